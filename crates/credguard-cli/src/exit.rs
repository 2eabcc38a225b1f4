//! Exit codes and the error type every command returns.
//!
//! The codes are stable and documented in the README; scripts branch on them.

use std::fmt;
use std::process::ExitCode;

use credguard::{CcgError, ErrorKind, Remedy};
use credguard_emulator::EmulatorError;

/// The exit codes of `credguard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// A check failed: `probe` had a failing step, `credspec validate` found errors.
    CheckFailed = 1,
    /// Usage error or bad input (invalid id, unreadable or invalid credential spec).
    Usage = 2,
    /// HCS failed (the error says which call and step).
    Hcs = 3,
    /// No instance for the id (or no utility VM of the id, in the emulator).
    NotFound = 4,
    /// An instance already exists for the id (or a utility VM, in the emulator), or another
    /// process is creating or releasing it (its journal record is busy).
    AlreadyExists = 5,
    /// Refused by policy (gMSA disabled).
    Denied = 6,
    /// Local state failed: state directory, emulator state, journal.
    State = 7,
    /// The chosen backend cannot work here.
    Unavailable = 8,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// An error with the exit code it ends the process with.
pub struct CliError {
    pub code: Exit,
    pub error: Box<dyn std::error::Error + Send + Sync + 'static>,
    /// The credguard command that helps, printed after the chain (`hint: ...`): the
    /// library's messages say what to do in words, since its callers have no such command.
    pub hint: Option<String>,
}

impl CliError {
    pub fn new(
        code: Exit,
        error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        CliError {
            code,
            error: error.into(),
            hint: None,
        }
    }

    pub fn usage(message: impl fmt::Display) -> Self {
        CliError::new(Exit::Usage, message.to_string())
    }

    /// Prints the error once, as a chain: `error: ...` then `caused by: ...` lines.
    pub fn print(&self) {
        errln!("error: {}", indent(&self.error.to_string()));
        let mut next = self.error.source();
        while let Some(e) = next {
            errln!("caused by: {}", indent(&e.to_string()));
            next = e.source();
        }
        if let Some(hint) = &self.hint {
            errln!("hint: {hint}");
        }
    }
}

impl fmt::Debug for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.error)
    }
}

/// Continuation lines of a multi-line message are indented under the first.
fn indent(s: &str) -> String {
    s.replace('\n', "\n    ")
}

impl From<CcgError> for CliError {
    fn from(e: CcgError) -> Self {
        let code = match e.kind() {
            ErrorKind::InvalidInput => Exit::Usage,
            ErrorKind::Denied => Exit::Denied,
            ErrorKind::AlreadyExists => Exit::AlreadyExists,
            ErrorKind::NotFound => Exit::NotFound,
            ErrorKind::Hcs => Exit::Hcs,
            ErrorKind::State => Exit::State,
            // A kind added later: a failure of the host's service is the closest.
            _ => Exit::Hcs,
        };
        let hint = hint(&e);
        CliError {
            hint,
            ..CliError::new(code, e)
        }
    }
}

/// The credguard command that does what the error's remedy says, if it has one.
pub fn hint(e: &CcgError) -> Option<String> {
    let id = e.container_id();
    Some(match e.remedy()? {
        Remedy::RemoveInstance => {
            format!("`credguard instances remove {id}` removes it (or use another id)")
        }
        Remedy::Reconcile => {
            "`credguard reconcile` removes what the journal keeps, once the utility VM allows it"
                .to_owned()
        }
        Remedy::RemoveInstanceOrReconcile => {
            format!(
                "remove it with `credguard instances remove {id}`, or run `credguard reconcile`"
            )
        }
        Remedy::WaitOrReconcile => {
            "wait for the other process, or run `credguard reconcile` if it died".to_owned()
        }
        _ => return None,
    })
}

impl From<EmulatorError> for CliError {
    fn from(e: EmulatorError) -> Self {
        let code = match e {
            EmulatorError::Invalid(_) => Exit::Usage,
            EmulatorError::Exists(_) => Exit::AlreadyExists,
            EmulatorError::NotFound(_) => Exit::NotFound,
            _ => Exit::State,
        };
        CliError::new(code, e)
    }
}
