//! Turning a `--credspec` argument into the credential spec sent to HCS.
//!
//! Every command that takes `--credspec` goes through [`read_credspec`]: the library's one
//! source parser (paths, `-`, `file://`, `raw://`, `registry://`, Kubernetes manifests, OCI
//! bundle configs), then the linter. A spec with lint errors is refused, naming each error,
//! unless `--no-lint`; warnings are logged. What is returned is the loaded spec, with what
//! its source says about policy; what is sent is its canonical form (compact JSON, no BOM),
//! whatever encoding and layout the source had.

use std::fmt;
use std::path::PathBuf;

use credguard::CcgError;
use credguard::credspec::{Diagnostic, LoadedSpec, Severity, default_credspec_dir, load_arg};
use tracing::{debug, info, warn};

use crate::Context;
use crate::exit::{CliError, Exit};

/// The options of a command that reads one credential spec.
#[derive(Debug, clap::Args)]
pub struct CredspecArgs {
    /// The credential spec: a path (a spec, a Kubernetes GMSACredentialSpec manifest as PATH
    /// or PATH#NAME, or an OCI bundle config.json), `-` for standard input, file://NAME
    /// (relative to --credspec-dir), raw://JSON, or registry://NAME (Windows).
    #[arg(long, value_name = "SOURCE")]
    pub credspec: String,

    #[command(flatten)]
    pub dir: CredspecDirArg,

    /// Use the credential spec even if the linter finds errors in it (they are logged as
    /// warnings). Without this, a spec with lint errors is refused before anything is sent.
    #[arg(long)]
    pub no_lint: bool,
}

/// `--credspec-dir`, for every command that reads `file://NAME` or writes specs.
#[derive(Debug, Clone, clap::Args)]
pub struct CredspecDirArg {
    /// The credential-spec directory that file://NAME is relative to. Default: Docker's
    /// `C:\ProgramData\docker\CredentialSpecs` on Windows, `<state-dir>/CredentialSpecs`
    /// elsewhere.
    #[arg(long, value_name = "DIR", env = "CREDGUARD_CREDSPEC_DIR")]
    pub credspec_dir: Option<PathBuf>,
}

impl CredspecDirArg {
    /// The directory to use.
    pub fn resolve(&self, ctx: &Context) -> PathBuf {
        self.credspec_dir
            .clone()
            .unwrap_or_else(|| default_credspec_dir(&ctx.state_dir))
    }
}

/// Loads a credential spec source, mapping failures to exit code 2 (bad input).
pub fn load(ctx: &Context, source: &str, dir: &CredspecDirArg) -> Result<LoadedSpec, CliError> {
    let loaded = load_arg(source, &dir.resolve(ctx)).map_err(|e| CliError::new(Exit::Usage, e))?;
    debug!(
        origin = %loaded.origin,
        form = ?loaded.form,
        encoding = %loaded.document.encoding(),
        "read the credential spec"
    );
    Ok(loaded)
}

/// Reads and lints the credential spec of `--credspec`.
///
/// `check` is the library's check of the request the spec is for (`SpecRequest::check`,
/// `CcgClient::check_request`): it runs before the lint, so a spec whose source denies it
/// (an OCI bundle's gMSA-disable annotation) is refused (exit 6) before its lint errors
/// matter. `CcgClient::create_spec_request` applies it again whatever the caller did.
pub fn read_credspec(
    ctx: &Context,
    args: &CredspecArgs,
    check: impl FnOnce(&LoadedSpec) -> Result<(), CcgError>,
) -> Result<LoadedSpec, CliError> {
    read_credspec_from(ctx, &args.credspec, &args.dir, args.no_lint, check)
}

/// [`read_credspec`] for a source given otherwise (e.g. an OCI bundle's `config.json`).
pub fn read_credspec_from(
    ctx: &Context,
    source: &str,
    dir: &CredspecDirArg,
    no_lint: bool,
    check: impl FnOnce(&LoadedSpec) -> Result<(), CcgError>,
) -> Result<LoadedSpec, CliError> {
    let loaded = load(ctx, source, dir)?;
    check(&loaded)?;
    let (errors, warnings): (Vec<Diagnostic>, Vec<Diagnostic>) = loaded
        .document
        .lint()
        .into_iter()
        .partition(Diagnostic::is_error);
    for d in &warnings {
        log_diagnostic(&loaded.origin, d);
    }
    if !errors.is_empty() {
        if !no_lint {
            return Err(CliError::new(
                Exit::Usage,
                LintRefused {
                    origin: loaded.origin,
                    errors,
                },
            ));
        }
        for d in &errors {
            log_diagnostic(&loaded.origin, d);
        }
        warn!(origin = %loaded.origin, errors = errors.len(), "using a credential spec with lint errors (--no-lint)");
    }
    Ok(loaded)
}

/// Logs one diagnostic as a warning, an info note at info level (diagnostics never quote a
/// PluginInput).
fn log_diagnostic(origin: &str, d: &Diagnostic) {
    if d.severity == Severity::Info {
        info!(
            origin = %origin,
            line = d.line,
            code = %d.code,
            severity = %d.severity,
            path = %d.path,
            hint = %d.hint,
            "credential spec: {}",
            d.message
        );
        return;
    }
    warn!(
        origin = %origin,
        line = d.line,
        code = %d.code,
        severity = %d.severity,
        path = %d.path,
        hint = %d.hint,
        "credential spec: {}",
        d.message
    );
}

/// `origin:line: error[CS011] DomainJoinConfig.Sid: message` and an indented hint line.
pub fn diagnostic_text(origin: &str, d: &Diagnostic) -> String {
    let at = match d.line {
        Some(line) => format!("{origin}:{line}"),
        None => origin.to_owned(),
    };
    format!(
        "{at}: {}[{}] {}: {}\n  hint: {}",
        d.severity, d.code, d.path, d.message, d.hint
    )
}

/// A credential spec refused because the linter found errors in it.
#[derive(Debug)]
pub struct LintRefused {
    origin: String,
    errors: Vec<Diagnostic>,
}

impl fmt::Display for LintRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "the credential spec `{}` has {}; fix {} (`credguard credspec validate` explains each) or give --no-lint to use it anyway:",
            self.origin,
            crate::output::count(n, "lint error", "lint errors"),
            if n == 1 { "it" } else { "them" },
        )?;
        for d in &self.errors {
            write!(f, "\n{}", diagnostic_text(&self.origin, d))?;
        }
        Ok(())
    }
}

impl std::error::Error for LintRefused {}
