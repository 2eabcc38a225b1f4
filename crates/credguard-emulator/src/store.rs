//! Where the emulator keeps its state: in memory, or in files shared by processes.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use credguard_statefile::{
    FileLock, StateFileError, check_private_dir, ensure_private_dir, ensure_regular, no_follow,
    open_error, read_if_exists, write_atomic,
};

use credguard::text::shown_file;

use crate::fault::Api;
use crate::state::{CallRecord, FORMAT, Outcome, State};

/// Why the emulator's own state failed (not an emulated HCS failure).
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// A state file or directory could not be read or written.
    #[error("the emulator state could not be accessed")]
    Io(#[from] StateFileError),
    /// The state file is not valid.
    #[error(
        "emulator state file `{}` is corrupt ({reason}); it was left as it is: inspect it, then move it aside to start an empty emulator",
        shown_file(.path)
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file is JSON but not an emulator state file.
    #[error(
        "`{}` is not a credguard emulator state file (it lacks \"format\": \"{FORMAT}\"); it was left as it is: use another --state-dir or move the file aside",
        shown_file(.path)
    )]
    Foreign {
        /// The file.
        path: PathBuf,
    },
    /// A request to the emulator itself cannot be done.
    #[error("{0}")]
    Invalid(String),
    /// What a request would create exists already (a utility VM of that id).
    #[error("{0}")]
    Exists(String),
    /// What a request names does not exist (no utility VM of that id).
    #[error("{0}")]
    NotFound(String),
}

#[derive(Debug)]
pub(crate) enum Store {
    Memory(Mutex<(State, Vec<CallRecord>)>),
    Files(Files),
}

#[derive(Debug)]
pub(crate) struct Files {
    state: PathBuf,
    lock: PathBuf,
    calls: PathBuf,
    /// Opened by [`Store::files_read_only`]: calls are answered from the saved state, and
    /// nothing is written (no lock file, no call log line, no fault used up).
    read_only: bool,
}

impl Store {
    pub fn memory() -> Self {
        Store::Memory(Mutex::new((State::default(), Vec::new())))
    }

    pub fn files(dir: &Path) -> Result<Self, EmulatorError> {
        ensure_private_dir(dir)?;
        let files = Files {
            state: dir.join("state.json"),
            lock: dir.join("state.lock"),
            calls: dir.join("calls.jsonl"),
            read_only: false,
        };
        // Refuse a corrupt or foreign state file now, with its name, not at the first call.
        let _lock = FileLock::acquire(&files.lock)?;
        files.load()?;
        Ok(Store::Files(files))
    }

    /// The state in `dir` for reading only: the directory is checked, not created (a missing
    /// one reads as an empty emulator), no lock is taken (every state write is an atomic
    /// rename, and a torn call-log line is skipped), and calls change nothing.
    pub fn files_read_only(dir: &Path) -> Result<Self, EmulatorError> {
        check_private_dir(dir)?;
        let files = Files {
            state: dir.join("state.json"),
            lock: dir.join("state.lock"),
            calls: dir.join("calls.jsonl"),
            read_only: true,
        };
        files.load()?;
        Ok(Store::Files(files))
    }

    /// Runs `f` on the state under the lock, saving the state afterwards if `f` succeeded.
    pub fn try_update<R>(
        &self,
        f: impl FnOnce(&mut State) -> Result<R, EmulatorError>,
    ) -> Result<R, EmulatorError> {
        match self {
            Store::Memory(m) => f(&mut lock_memory(m).0),
            Store::Files(files) => {
                files.refuse_if_read_only()?;
                let _lock = FileLock::acquire(&files.lock)?;
                let mut state = files.load()?;
                let out = f(&mut state)?;
                files.save(&state)?;
                Ok(out)
            }
        }
    }

    /// Takes the first fault matching a call, saving only when the queue changed; with it, how
    /// many times delays had been ended ([`State::delays_ended`]) when it was taken.
    pub fn take_fault(
        &self,
        api: Api,
        operation: Option<&str>,
    ) -> Result<Option<(crate::Fault, u64)>, EmulatorError> {
        let take = |state: &mut State| {
            let ended = state.delays_ended;
            state.take_fault(api, operation).map(|f| (f, ended))
        };
        match self {
            Store::Memory(m) => Ok(take(&mut lock_memory(m).0)),
            Store::Files(files) if files.read_only => {
                // The fault applies as if it were the next call; it is not used up.
                Ok(take(&mut files.load()?))
            }
            Store::Files(files) => {
                let _lock = FileLock::acquire(&files.lock)?;
                let mut state = files.load()?;
                if !state.faults.iter().any(|f| f.matches(api, operation)) {
                    return Ok(None);
                }
                let fault = take(&mut state);
                files.save(&state)?;
                Ok(fault)
            }
        }
    }

    pub fn update(&self, f: impl FnOnce(&mut State)) -> Result<(), EmulatorError> {
        self.try_update(|s| {
            f(s);
            Ok(())
        })
    }

    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> Result<R, EmulatorError> {
        match self {
            Store::Memory(m) => Ok(f(&lock_memory(m).0)),
            Store::Files(files) if files.read_only => Ok(f(&files.load()?)),
            Store::Files(files) => {
                let _lock = FileLock::acquire(&files.lock)?;
                Ok(f(&files.load()?))
            }
        }
    }

    /// Applies a call under the lock, saves its effect, then logs it.
    pub fn call(
        &self,
        f: impl FnOnce(&mut State) -> Outcome,
        api: Api,
        target: Option<&str>,
        document: &str,
    ) -> Result<Outcome, EmulatorError> {
        let record = |state: &mut State, outcome: &Outcome| {
            let seq = state.next_seq;
            state.next_seq += 1;
            CallRecord {
                seq,
                api,
                target: target.map(str::to_owned),
                document: document.to_owned(),
                hresult: outcome.hresult,
            }
        };
        match self {
            Store::Memory(m) => {
                let mut guard = lock_memory(m);
                let (state, calls) = &mut *guard;
                let outcome = f(state);
                calls.push(record(state, &outcome));
                Ok(outcome)
            }
            Store::Files(files) if files.read_only => {
                // Answered from the saved state; neither the state nor the log changes.
                let mut state = files.load()?;
                Ok(f(&mut state))
            }
            Store::Files(files) => {
                let _lock = FileLock::acquire(&files.lock)?;
                let mut state = files.load()?;
                let outcome = f(&mut state);
                let rec = record(&mut state, &outcome);
                files.save(&state)?;
                files.append_call(&rec)?;
                Ok(outcome)
            }
        }
    }

    pub fn calls(&self) -> Result<Vec<CallRecord>, EmulatorError> {
        match self {
            Store::Memory(m) => Ok(lock_memory(m).1.clone()),
            Store::Files(files) if files.read_only => files.load_calls(),
            Store::Files(files) => {
                let _lock = FileLock::acquire(&files.lock)?;
                files.load_calls()
            }
        }
    }

    pub fn clear_calls(&self) -> Result<(), EmulatorError> {
        match self {
            Store::Memory(m) => {
                lock_memory(m).1.clear();
                Ok(())
            }
            Store::Files(files) => {
                files.refuse_if_read_only()?;
                let _lock = FileLock::acquire(&files.lock)?;
                Ok(write_atomic(&files.calls, b"")?)
            }
        }
    }
}

fn lock_memory(
    m: &Mutex<(State, Vec<CallRecord>)>,
) -> std::sync::MutexGuard<'_, (State, Vec<CallRecord>)> {
    // A panic while holding the lock cannot leave the state half-updated in a way that
    // matters to an emulator; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Files {
    fn refuse_if_read_only(&self) -> Result<(), EmulatorError> {
        if self.read_only {
            return Err(EmulatorError::Invalid(
                "the emulator state was opened read-only".to_owned(),
            ));
        }
        Ok(())
    }

    fn load(&self) -> Result<State, EmulatorError> {
        let Some(bytes) = read_if_exists(&self.state)? else {
            return Ok(State::default());
        };
        let corrupt = |reason: String| EmulatorError::Corrupt {
            path: self.state.clone(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not valid JSON: {e}")))?;
        if value.get("format").and_then(serde_json::Value::as_str) != Some(FORMAT) {
            return Err(EmulatorError::Foreign {
                path: self.state.clone(),
            });
        }
        serde_json::from_value(value).map_err(|e| corrupt(format!("unexpected content: {e}")))
    }

    fn save(&self, state: &State) -> Result<(), EmulatorError> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| EmulatorError::Corrupt {
            path: self.state.clone(),
            reason: format!("cannot be serialised: {e}"),
        })?;
        Ok(write_atomic(&self.state, &bytes)?)
    }

    fn append_call(&self, record: &CallRecord) -> Result<(), EmulatorError> {
        let err = |e: io::Error| StateFileError {
            action: "appending to",
            path: self.calls.clone(),
            source: e,
        };
        let mut line = serde_json::to_vec(record).map_err(|e| err(io::Error::other(e)))?;
        line.push(b'\n');
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        no_follow(&mut options);
        let mut file = options
            .open(&self.calls)
            .map_err(|e| open_error("appending to", &self.calls, e))?;
        ensure_regular(&file, &self.calls)?;
        // Owner-only even if an older file was not (the mode at creation is less the umask).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(err)?;
        }
        // Start on a fresh line if a killed process left a torn one.
        if file.metadata().map_err(err)?.len() > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1)).map_err(err)?;
            file.read_exact(&mut last).map_err(err)?;
            if last[0] != b'\n' {
                line.insert(0, b'\n');
            }
        }
        file.write_all(&line).map_err(err)?;
        file.sync_data().map_err(err)?;
        Ok(())
    }

    fn load_calls(&self) -> Result<Vec<CallRecord>, EmulatorError> {
        let Some(bytes) = read_if_exists(&self.calls)? else {
            return Ok(Vec::new());
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut out = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match serde_json::from_str(line) {
                Ok(rec) => out.push(rec),
                // A process killed mid-append leaves a torn line; the log is a record, not
                // state, so it is skipped rather than failing every later read.
                Err(e) => {
                    tracing::warn!(file = %self.calls.display(), line = n + 1, error = %e, "skipping a torn call-log line");
                }
            }
        }
        Ok(out)
    }
}
