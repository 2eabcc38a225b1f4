//! `credguard credspec validate|show|new`: check, show and write credential specs.
//!
//! All the work is the library's (`credguard::credspec`); this prints it. `validate` exits 0
//! when no source has errors, 1 when one has (or warnings, with `--strict`), 2 when a source
//! cannot be read at all. `show` redacts `PluginInput` unless `--show-secrets`. `new` writes
//! the spec it generates as is, since it is the file asked for.

use std::io::Read;
use std::path::PathBuf;

use crate::chain::chain_line;
use clap::{Args, Subcommand};
use credguard::credspec::generate::write_spec_file;
use credguard::credspec::syntax::shown_path;
use credguard::credspec::{
    AdditionalAccount, GenerateError, HostAccount, KnownPlugin, LoadedSpec, NewSpec, PluginInput,
    Severity, load_arg, shown_arg,
};
use serde_json::Value;

use crate::Context;
use crate::credspec_input::{CredspecDirArg, diagnostic_text, load};
use crate::documents::{
    NewDoc, PluginDoc, ShowDoc, UnreadableSource, ValidateDoc, ValidateItem, ValidateReport,
};
use crate::exit::{CliError, Exit};
use crate::output::{OutputFormat, count, emit, shown};

pub const EXAMPLES: &str = "\
Examples:
  credguard credspec validate contoso_webapp01.json
  credguard credspec show file://contoso_webapp01.json
  credguard credspec new --account WebApp01 --domain contoso.com --netbios CONTOSO \\
      --sid S-1-5-21-702590844-1001920913-2680819671 \\
      --guid 244818ae-87ca-4fcd-92ec-e79e5252348a";

const VALIDATE_EXAMPLES: &str = "\
Examples:
  credguard credspec validate contoso_webapp01.json manifests.yaml#webapp1-credspec file://web.json
  # warnings fail too
  credguard credspec validate --strict spec.json
  credguard credspec validate /run/bundles/web-5/config.json
  credguard credspec validate - < spec.json
  # the diagnostics as JSON
  credguard --output json credspec validate spec.json";

const SHOW_EXAMPLES: &str = "\
Examples:
  credguard credspec show contoso_webapp01.json
  credguard credspec show file://contoso_webapp01.json
  # with PluginInput
  credguard --show-secrets credspec show spec.json
  credguard --output json credspec show manifests.yaml#webapp1-credspec";

const NEW_EXAMPLES: &str = "\
Examples:
  credguard credspec new --account WebApp01 --domain contoso.com --netbios CONTOSO \\
      --sid S-1-5-21-702590844-1001920913-2680819671 \\
      --guid 244818ae-87ca-4fcd-92ec-e79e5252348a
  credguard credspec new --account WebApp01 --domain contoso.com --netbios CONTOSO \\
      --sid S-1-5-21-702590844-1001920913-2680819671 \\
      --guid 244818ae-87ca-4fcd-92ec-e79e5252348a \\
      --additional-account WebApp02@emea.contoso.com --save
  credguard credspec new --account WebApp01 --domain contoso.com --netbios CONTOSO \\
      --sid S-1-5-21-702590844-1001920913-2680819671 \\
      --guid 244818ae-87ca-4fcd-92ec-e79e5252348a \\
      --plugin-guid 859e1386-bdb4-49e8-85c7-3070b13920e1 \\
      --plugin-input-file plugin-input.txt --save --force";

#[derive(Debug, Subcommand)]
pub enum CredspecCommand {
    /// Lint credential specs: print each diagnostic with its code, the member it is about and
    /// what to do. Exit 0 when no source has errors, 1 when one has (warnings count too with
    /// --strict), 2 when a source cannot be read.
    #[command(after_help = VALIDATE_EXAMPLES)]
    Validate(ValidateArgs),
    /// Print a credential spec as it would be sent (normalised JSON), with PluginInput
    /// redacted unless --show-secrets.
    #[command(after_help = SHOW_EXAMPLES)]
    Show(ShowArgs),
    /// Write a new credential spec as New-CredentialSpec does, offline: no Active Directory
    /// is contacted, so the domain's SID and GUID are given (`Get-ADDomain` shows them).
    #[command(after_help = NEW_EXAMPLES)]
    New(Box<NewArgs>),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Credential spec sources: paths (specs, Kubernetes manifests as PATH or PATH#NAME, OCI
    /// bundle config.json), `-` for standard input, file://NAME, raw://JSON, registry://NAME.
    #[arg(required = true, value_name = "SOURCE")]
    pub sources: Vec<String>,

    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub strict: bool,

    #[command(flatten)]
    pub dir: CredspecDirArg,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The credential spec source (the forms `validate` takes).
    #[arg(value_name = "SOURCE")]
    pub source: String,

    #[command(flatten)]
    pub dir: CredspecDirArg,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The gMSA's account name, without `$` (at most 15 characters).
    #[arg(long, value_name = "NAME")]
    pub account: String,

    /// The domain's DNS name (`(Get-ADDomain).DNSRoot`).
    #[arg(long, value_name = "DNS")]
    pub domain: String,

    /// The domain's NetBIOS name (`(Get-ADDomain).NetBIOSName`).
    #[arg(long, value_name = "NAME")]
    pub netbios: String,

    /// The domain's SID (`(Get-ADDomain).DomainSID.Value`), not the gMSA's.
    #[arg(long, value_name = "SID")]
    pub sid: String,

    /// The domain's objectGUID (`(Get-ADDomain).ObjectGUID`), not the gMSA's.
    #[arg(long, value_name = "GUID")]
    pub guid: String,

    /// The forest root's DNS name (`(Get-ADDomain).Forest`); default: --domain.
    #[arg(long, value_name = "DNS")]
    pub forest: Option<String>,

    /// Another gMSA the container may use, as NAME@DNS (repeatable).
    #[arg(long = "additional-account", value_name = "NAME@DNS")]
    pub additional_accounts: Vec<AdditionalAccount>,

    /// The CCG plug-in's CLSID, for hosts that are not domain joined (portable CCG).
    /// Needs --plugin-input or --plugin-input-file.
    #[arg(long, value_name = "GUID")]
    pub plugin_guid: Option<String>,

    /// What the plug-in reads. Visible to other users in process listings: prefer
    /// --plugin-input-file when it holds a secret.
    #[arg(long, value_name = "TEXT", requires = "plugin_guid")]
    pub plugin_input: Option<String>,

    /// Read the plug-in input from a file (`-` for standard input); one final newline is
    /// dropped.
    #[arg(
        long,
        value_name = "PATH",
        requires = "plugin_guid",
        conflicts_with = "plugin_input"
    )]
    pub plugin_input_file: Option<PathBuf>,

    /// Write the spec into the credential-spec directory as `{netbios}_{account}.json`
    /// (lower case) instead of standard output: owner-only (it may hold the plug-in
    /// secret) and atomically; directories created for it are owner-only too.
    #[arg(long)]
    pub save: bool,

    /// With --save, overwrite an existing file.
    #[arg(long, requires = "save")]
    pub force: bool,

    #[command(flatten)]
    pub dir: CredspecDirArg,
}

pub fn run(ctx: &Context, cmd: CredspecCommand) -> Result<Exit, CliError> {
    match cmd {
        CredspecCommand::Validate(args) => validate(ctx, &args),
        CredspecCommand::Show(args) => show(ctx, &args),
        CredspecCommand::New(args) => new(ctx, *args),
    }
}

/// The note naming a known plug-in, for output.
fn plugin_of(loaded: &LoadedSpec) -> Option<(String, Option<KnownPlugin>)> {
    plugin_guid_of(loaded).map(|guid| {
        let known = KnownPlugin::by_guid(&guid);
        (guid, known)
    })
}

/// [`plugin_of`] as JSON output shows it.
fn plugin_doc(loaded: &LoadedSpec) -> Option<PluginDoc> {
    plugin_of(loaded).map(|(guid, known)| PluginDoc {
        guid,
        name: known.map(|k| k.name.to_owned()),
    })
}

/// The `PluginGUID` a spec names, if any.
fn plugin_guid_of(loaded: &LoadedSpec) -> Option<String> {
    let guid = loaded
        .document
        .root()
        .get("ActiveDirectoryConfig")?
        .get("HostAccountConfig")?
        .get("PluginGUID")?
        .as_str()?
        .to_owned();
    Some(guid)
}

fn validate(ctx: &Context, args: &ValidateArgs) -> Result<Exit, CliError> {
    let dir = args.dir.resolve(ctx);
    let mut unreadable = false;
    let mut failed = false;
    let mut reports: ValidateDoc = Vec::new();
    for source in &args.sources {
        let loaded = match load_arg(source, &dir) {
            Ok(l) => l,
            Err(e) => {
                unreadable = true;
                let chain = chain_line(&e);
                match ctx.output {
                    OutputFormat::Text => errln!("error: {chain}"),
                    OutputFormat::Json | OutputFormat::Jsonl => {
                        reports.push(ValidateItem::Unreadable(UnreadableSource {
                            source: shown_arg(source),
                            readable: false,
                            error: chain,
                        }));
                    }
                }
                continue;
            }
        };
        let diagnostics = loaded.document.lint();
        let count = |s: Severity| diagnostics.iter().filter(|d| d.severity == s).count();
        // A spec its own bundle disables is not usable as it stands: a warning (an error
        // under --strict), said in the words `instances add` refuses it with.
        let disabled = loaded.policy.gmsa_disabled.as_deref();
        let (errors, warnings) = (
            count(Severity::Error),
            count(Severity::Warning) + usize::from(disabled.is_some()),
        );
        let ok = errors == 0 && (!args.strict || warnings == 0);
        failed |= !ok;
        match ctx.output {
            OutputFormat::Text => {
                for d in &diagnostics {
                    outln!("{}", diagnostic_text(&loaded.origin, d));
                }
                if let Some((guid, Some(p))) = &plugin_of(&loaded) {
                    outln!(
                        "{}: note: PluginGUID {guid} is the {}",
                        loaded.origin,
                        p.name
                    );
                }
                if let Some(reason) = disabled {
                    outln!("{}", disabled_text(&loaded.origin, reason));
                }
                outln!("{}", summary(&loaded.origin, errors, warnings, ok));
            }
            OutputFormat::Json | OutputFormat::Jsonl => {
                reports.push(ValidateItem::Read(Box::new(ValidateReport {
                    source: shown_arg(source),
                    plugin: plugin_doc(&loaded),
                    origin: loaded.origin.clone(),
                    readable: true,
                    form: loaded.form.clone(),
                    encoding: loaded.document.encoding(),
                    valid: ok,
                    errors,
                    warnings,
                    gmsa_disabled: disabled.map(str::to_owned),
                    diagnostics,
                })));
            }
        }
    }
    if ctx.output.is_json() {
        emit(ctx.output, &reports);
    }
    Ok(if unreadable {
        Exit::Usage
    } else if failed {
        Exit::CheckFailed
    } else {
        Exit::Ok
    })
}

/// The warning of a spec whose OCI bundle disables gMSA.
fn disabled_text(origin: &str, reason: &str) -> String {
    format!(
        "{origin}: warning: the OCI bundle disables gMSA ({reason}): `instances add` and `probe` refuse this credential spec (operation denied, exit 6)"
    )
}

fn summary(origin: &str, errors: usize, warnings: usize, ok: bool) -> String {
    let plural = |n: usize, word: &str| count(n, word, &format!("{word}s"));
    match (errors, warnings, ok) {
        (0, 0, _) => format!("{origin}: ok"),
        (_, _, true) => format!("{origin}: ok, {}", plural(warnings, "warning")),
        _ => format!(
            "{origin}: {}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        ),
    }
}

fn show(ctx: &Context, args: &ShowArgs) -> Result<Exit, CliError> {
    let loaded = load(ctx, &args.source, &args.dir)?;
    let spec = shown(
        Value::Object(loaded.document.root().clone()),
        ctx.show_secrets,
    );
    let diagnostics = loaded.document.lint();
    match ctx.output {
        OutputFormat::Json | OutputFormat::Jsonl => emit(
            ctx.output,
            &ShowDoc {
                origin: loaded.origin.clone(),
                form: loaded.form.clone(),
                encoding: loaded.document.encoding(),
                plugin: plugin_doc(&loaded),
                errors: diagnostics.iter().filter(|d| d.is_error()).count(),
                warnings: diagnostics
                    .iter()
                    .filter(|d| d.severity == Severity::Warning)
                    .count(),
                gmsa_disabled: loaded.policy.gmsa_disabled.clone(),
                spec,
            },
        ),
        OutputFormat::Text => {
            outln!(
                "{}",
                serde_json::to_string_pretty(&spec).unwrap_or_default()
            );
            if let Some(reason) = &loaded.policy.gmsa_disabled {
                errln!("{}", disabled_text(&loaded.origin, reason));
            }
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            let warnings = diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Warning)
                .count();
            // Info notes (an unknown plug-in) are `validate`'s to list, not worth a note here.
            if errors + warnings > 0 {
                errln!(
                    "note: `{}` has {} and {}: run `credguard credspec validate` for details",
                    loaded.origin,
                    count(errors, "lint error", "lint errors"),
                    count(warnings, "warning", "warnings")
                );
            }
        }
    }
    Ok(Exit::Ok)
}

fn read_plugin_input(path: &std::path::Path) -> Result<String, CliError> {
    let mut bytes = Vec::new();
    let result = if path.as_os_str() == "-" {
        std::io::stdin()
            .take(credguard::lifecycle::MAX_CREDENTIAL_SPEC_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
    } else if let Some(device) = credguard::credspec::device_in_path(path) {
        return Err(CliError::usage(format!(
            "--plugin-input-file `{}` is refused: {device} on Windows, not a file; give `-` to read standard input",
            shown_path(&path.display().to_string())
        )));
    } else {
        // Non-blocking open and a bounded read: a FIFO without a writer or an endless
        // device fails at once instead of hanging.
        credguard::credspec::read_path_limited(
            path,
            credguard::lifecycle::MAX_CREDENTIAL_SPEC_BYTES as u64,
        )
        .map(|read| {
            bytes = read;
            bytes.len()
        })
    };
    result.map_err(|e| {
        CliError::usage(format!(
            "cannot read --plugin-input-file `{}`: {e}",
            shown_path(&path.display().to_string())
        ))
    })?;
    if bytes.len() > credguard::lifecycle::MAX_CREDENTIAL_SPEC_BYTES {
        return Err(CliError::usage(format!(
            "--plugin-input-file `{}` is over 64 KiB, more than a credential spec can hold",
            shown_path(&path.display().to_string())
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        CliError::usage(format!(
            "--plugin-input-file `{}` is not UTF-8 text",
            shown_path(&path.display().to_string())
        ))
    })?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_owned())
}

fn new(ctx: &Context, args: NewArgs) -> Result<Exit, CliError> {
    let plugin_input = match (&args.plugin_input, &args.plugin_input_file) {
        (Some(text), _) => Some(text.clone()),
        (None, Some(path)) => Some(read_plugin_input(path)?),
        (None, None) => None,
    };
    let host_account = match (args.plugin_guid, plugin_input) {
        (Some(plugin_guid), Some(input)) => Some(HostAccount {
            plugin_guid,
            plugin_input: PluginInput::text(input),
        }),
        (Some(_), None) => {
            return Err(CliError::usage(
                "--plugin-guid needs --plugin-input or --plugin-input-file",
            ));
        }
        (None, _) => None,
    };
    let request = NewSpec {
        account: args.account,
        domain: args.domain,
        netbios: args.netbios,
        sid: args.sid,
        guid: args.guid,
        forest: args.forest,
        additional_accounts: args.additional_accounts,
        host_account,
    };
    let generated = request.build().map_err(|e| CliError::new(Exit::Usage, e))?;
    for w in &generated.warnings {
        errln!("{}", diagnostic_text("new credential spec", w));
    }
    let text = generated.to_json();
    let written = if args.save {
        let dir = args.dir.resolve(ctx);
        // The default directory is under the state directory (not on Windows): it must be
        // private, as for every other command, before anything is written beneath it.
        if args.dir.credspec_dir.is_none() && dir.starts_with(&ctx.state_dir) {
            crate::backend::prepare_state_dir(&ctx.state_dir)?;
        }
        let path = write_spec_file(&dir, &request.file_name(), &text, args.force).map_err(|e| {
            let code = match e {
                GenerateError::Exists { .. } => Exit::AlreadyExists,
                GenerateError::UnsafeFileName { .. } | GenerateError::Invalid { .. } => Exit::Usage,
                _ => Exit::State,
            };
            CliError::new(code, e)
        })?;
        Some(path)
    } else {
        None
    };
    match (ctx.output, &written) {
        (OutputFormat::Text, Some(path)) => {
            outln!("wrote {}", shown_path(&path.display().to_string()));
        }
        (OutputFormat::Text, None) => outln!("{}", text.strip_suffix('\n').unwrap_or(&text)),
        (OutputFormat::Json | OutputFormat::Jsonl, _) => emit(
            ctx.output,
            &NewDoc {
                written: written.as_ref().map(|p| p.display().to_string()),
                file_name: request.file_name(),
                warnings: generated.warnings.clone(),
                spec: if written.is_some() {
                    None
                } else {
                    Some(Value::Object(generated.spec.to_map()))
                },
            },
        ),
    }
    Ok(Exit::Ok)
}
