//! Choosing and opening the HCS backend: the real HCS on Windows, the emulator elsewhere.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::ValueEnum;
use credguard::hcs::HcsService;
use credguard_emulator::Emulator;

use crate::exit::{CliError, Exit};

/// Which HCS to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// The real HCS on Windows, the emulator elsewhere.
    Auto,
    /// The real HCS (computecore.dll); Windows only.
    Hcs,
    /// The HCS emulator, with its state under the state directory.
    Emulator,
}

impl BackendKind {
    /// `auto` made concrete for this platform.
    pub fn resolve(self) -> BackendKind {
        match self {
            BackendKind::Auto if cfg!(windows) => BackendKind::Hcs,
            BackendKind::Auto => BackendKind::Emulator,
            other => other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Hcs => "hcs",
            BackendKind::Emulator => "emulator",
        }
    }
}

/// Where the emulator keeps its state inside the state directory.
pub fn emulator_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("emulator")
}

/// Creates the state directory if needed (owner-only) and checks it: on Unix it must be a
/// real directory (not a link) owned by the user running credguard and not writable by
/// group or others; on Windows its DACL must be private (see `statefile`).
pub fn prepare_state_dir(state_dir: &Path) -> Result<(), CliError> {
    credguard_statefile::ensure_private_dir(state_dir).map_err(|e| CliError::new(Exit::State, e))
}

/// Checks the state directory, if it exists, without creating or changing anything.
pub fn check_state_dir(state_dir: &Path) -> Result<(), CliError> {
    credguard_statefile::check_private_dir(state_dir)
        .map(|_| ())
        .map_err(|e| CliError::new(Exit::State, e))
}

/// Opens the emulator's persistent state.
pub fn open_emulator(state_dir: &Path) -> Result<Emulator, CliError> {
    prepare_state_dir(state_dir)?;
    Ok(Emulator::persistent(&emulator_dir(state_dir))?)
}

/// Opens the emulator's persistent state for reading only: nothing is created or written.
pub fn open_emulator_read_only(state_dir: &Path) -> Result<Emulator, CliError> {
    check_state_dir(state_dir)?;
    Ok(Emulator::persistent_read_only(&emulator_dir(state_dir))?)
}

/// Opens the chosen backend (`read_only`: an emulator that changes nothing on disk).
pub fn open(
    kind: BackendKind,
    state_dir: &Path,
    read_only: bool,
) -> Result<Arc<dyn HcsService>, CliError> {
    match kind.resolve() {
        BackendKind::Emulator if read_only => Ok(Arc::new(open_emulator_read_only(state_dir)?)),
        BackendKind::Emulator => Ok(Arc::new(open_emulator(state_dir)?)),
        _ => open_hcs(),
    }
}

/// The real HCS: computecore.dll, loaded now so that a host without it is told so before
/// anything else happens (exit code 8, "backend unavailable").
#[cfg(windows)]
fn open_hcs() -> Result<Arc<dyn HcsService>, CliError> {
    let hcs = credguard::hcs::windows::ComputeCore::new();
    let path = hcs
        .load()
        .map_err(|e| CliError::new(Exit::Unavailable, e))?;
    tracing::debug!(path = %path.display(), "HCS backend: computecore.dll loaded");
    Ok(Arc::new(hcs))
}

#[cfg(not(windows))]
fn open_hcs() -> Result<Arc<dyn HcsService>, CliError> {
    Err(CliError::new(
        Exit::Unavailable,
        format!(
            "--backend hcs needs Windows (computecore.dll, Windows 10 1809 / Windows Server 2019 or later); this is {}: use --backend emulator (the default here)",
            std::env::consts::OS
        ),
    ))
}
