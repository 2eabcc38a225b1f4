//! How the library's integration tests read an error: its chain on one line. (The library
//! keeps its own flattening private; printing a chain is the caller's choice.)

/// An error and its sources on one line (`a: b: c`).
pub fn chain_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string().replace('\n', " ");
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string().replace('\n', " "));
        next = e.source();
    }
    out
}
