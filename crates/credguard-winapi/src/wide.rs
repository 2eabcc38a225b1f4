//! Strings across the boundary: [`WideCString`] going in, owned `String`s coming back.

use std::io;
use std::path::Path;

use windows_sys::Win32::Foundation::{HLOCAL, LocalFree};
use windows_sys::core::{PCWSTR, PWSTR};

/// A UTF-16 string for Windows: NUL-terminated, with no NUL before the end.
///
/// The field is private so that nothing outside this module can break that invariant, on
/// which every `PCWSTR` this crate hands to Windows relies.
#[derive(Clone, PartialEq, Eq)]
pub struct WideCString(Vec<u16>);

/// A text with a NUL character inside, which a NUL-terminated string cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InteriorNul {
    /// The byte offset of the first NUL in the UTF-8 text.
    pub byte_offset: usize,
}

impl std::fmt::Display for InteriorNul {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the text contains a NUL character (at byte {})",
            self.byte_offset
        )
    }
}

impl std::error::Error for InteriorNul {}

impl WideCString {
    /// Converts UTF-8 text; refuses a text that contains a NUL character.
    ///
    /// # Errors
    /// [`InteriorNul`], with where the first NUL is.
    pub fn new(text: &str) -> Result<Self, InteriorNul> {
        if let Some(byte_offset) = text.find('\0') {
            return Err(InteriorNul { byte_offset });
        }
        let mut wide: Vec<u16> = text.encode_utf16().collect();
        wide.push(0);
        Ok(WideCString(wide))
    }

    /// Converts a path (which need not be valid Unicode); refuses one with a NUL inside.
    ///
    /// The path is passed on as it is: the calls taking it are limited to `MAX_PATH`
    /// characters unless the process is long-path aware.
    ///
    /// # Errors
    /// An error of kind `InvalidInput` when the path contains a NUL character.
    pub fn from_path(path: &Path) -> io::Result<Self> {
        use std::os::windows::ffi::OsStrExt;
        let mut wide: Vec<u16> = path.as_os_str().encode_wide().collect();
        if wide.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path contains a NUL character",
            ));
        }
        wide.push(0);
        Ok(WideCString(wide))
    }

    /// The UTF-16 code units without the terminating NUL.
    #[must_use]
    pub fn units(&self) -> &[u16] {
        &self.0[..self.0.len() - 1]
    }

    /// The pointer handed to Windows: valid, NUL-terminated and unchanged for as long as
    /// `self` is borrowed.
    pub(crate) fn as_ptr(&self) -> PCWSTR {
        self.0.as_ptr()
    }
}

impl std::fmt::Debug for WideCString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf16_lossy(self.units()))
    }
}

/// Takes ownership of a string Windows allocated with `LocalAlloc`, copies it into a
/// `String` and frees it.
///
/// # Safety
/// `raw` is null, or a NUL-terminated UTF-16 string allocated with `LocalAlloc` that the
/// caller owns and uses no more after this call.
pub(crate) unsafe fn take_local_string(raw: PWSTR) -> Option<String> {
    if raw.is_null() {
        return None;
    }
    // Freed by the guard on every path out of this function, unwinding included.
    struct Free(PWSTR);
    impl Drop for Free {
        fn drop(&mut self) {
            // SAFETY: self.0 is the non-null LocalAlloc'd string the caller of
            // take_local_string owns; nothing reads it after this guard is dropped, and it
            // is freed exactly once (the guard is not cloned or copied).
            let leaked: HLOCAL = unsafe { LocalFree(self.0.cast()) };
            debug_assert!(
                leaked.is_null(),
                "LocalFree failed on a string Windows returned"
            );
        }
    }
    let guard = Free(raw);
    let mut len = 0usize;
    // SAFETY: the string is NUL-terminated (caller's contract), so every index up to and
    // including the terminator is inside the allocation; reading stops at the terminator.
    while unsafe { *guard.0.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: guard.0 is valid for `len` u16 reads (just scanned), properly aligned (Windows
    // returns a WCHAR*), and not written to while the slice lives (we own it).
    let units = unsafe { std::slice::from_raw_parts(guard.0, len) };
    let text = String::from_utf16_lossy(units);
    drop(guard);
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_strings_are_nul_terminated_utf16() {
        let w = WideCString::new("añ日🚀").unwrap();
        assert_eq!(String::from_utf16(w.units()).unwrap(), "añ日🚀");
        assert_eq!(w.0.last(), Some(&0));
        assert_eq!(w.0.iter().filter(|&&u| u == 0).count(), 1);
        assert_eq!(
            WideCString::new("ab\0cd"),
            Err(InteriorNul { byte_offset: 2 })
        );
        assert_eq!(WideCString::new("").unwrap().units(), &[] as &[u16]);
    }

    #[test]
    fn paths_with_a_nul_are_refused() {
        let err = WideCString::from_path(Path::new("C:\\a\0b")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let w = WideCString::from_path(Path::new("C:\\dir\\fïle")).unwrap();
        assert_eq!(String::from_utf16(w.units()).unwrap(), "C:\\dir\\fïle");
        assert_eq!(w.0.last(), Some(&0));
    }
}
