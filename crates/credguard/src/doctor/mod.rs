//! `doctor`: whether a Windows host is ready for gMSA containers, check by check.
//!
//! Each check ends ok, warning or failed, with what was seen and, when it is not ok, the
//! next step. The checks read the host through [`Host`] (services, files, the registry, the
//! event log), so that their logic is tested anywhere; `WindowsHost` (Windows only) is the
//! real host, read through `credguard-winapi`.
//!
//! What is checked:
//! - the Containers feature (the HCS service `vmcompute` is installed), `vmcompute` running,
//!   `ccg.exe` and `computecore.dll` in `%SystemRoot%\System32`;
//! - for a spec with a plug-in (`ActiveDirectoryConfig.HostAccountConfig.PluginGUID`): the
//!   GUID's form, its registration under [`COMCLASSES_KEY`] (and one under the wrongly
//!   documented [`WRONG_COMCLASSES_KEY`], which CCG never reads), its COM class
//!   `HKCR\CLSID\{GUID}\InprocServer32` naming a file that exists;
//! - `COMClasses` entries with no COM class behind them (stale), with or without a spec;
//! - the CCG event channel [`CCG_CHANNEL`], and with a container id its recent events for
//!   that container, with their meaning where credguard knows it.
//!
//! Secrets: nothing here reads `PluginInput`, and events are reported by id, time and
//! meaning, never by their text.

mod events;
#[cfg(windows)]
mod windows;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::credspec::plugins::{DOCS_PLACEHOLDER_PLUGIN_GUID, KnownPlugin};
use crate::credspec::syntax::is_guid;
use crate::text::ShownId;

pub use events::{CcgEvent, event_meaning};
#[cfg(windows)]
pub use windows::WindowsHost;

/// Where CCG looks for a plug-in: `HKLM\<this>\{GUID}` (a key per plug-in CLSID).
pub const COMCLASSES_KEY: &str = r"SYSTEM\CurrentControlSet\Control\CCG\COMClasses";
/// Where some documents said to register a plug-in; CCG never reads it (CCG event 4,
/// "failed to instantiate the plugin ... Object was not found in registry").
pub const WRONG_COMCLASSES_KEY: &str = r"SYSTEM\CurrentControlSet\CCG\COMClasses";
/// The CCG event channel.
pub const CCG_CHANNEL: &str = "Microsoft-Windows-Containers-CCG/Admin";
/// The registry key of the CCG event channel, under `HKLM`.
pub const CCG_CHANNEL_KEY: &str = r"SOFTWARE\Microsoft\Windows\CurrentVersion\WINEVT\Channels\Microsoft-Windows-Containers-CCG/Admin";
/// How many of the channel's newest events are read for `--container`.
pub const EVENTS_READ: usize = 200;
/// How many of a container's events are reported.
pub const EVENTS_SHOWN: usize = 20;

/// A registry hive the checks read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hive {
    /// `HKEY_LOCAL_MACHINE`.
    LocalMachine,
    /// `HKEY_CLASSES_ROOT`.
    ClassesRoot,
}

impl Hive {
    /// `HKLM` or `HKCR`.
    #[must_use]
    pub fn prefix(self) -> &'static str {
        match self {
            Hive::LocalMachine => "HKLM",
            Hive::ClassesRoot => "HKCR",
        }
    }
}

/// What the service control manager says of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceProbe {
    /// Installed and running.
    Running,
    /// Installed, in another state (`stopped`, `start pending`, ...).
    NotRunning(String),
    /// Not installed.
    NotInstalled,
    /// Could not be asked: why.
    Unknown(String),
}

/// The host as the checks read it. Every error is a message naming what could not be read.
pub trait Host {
    /// The state of the service `name`.
    fn service(&self, name: &str) -> ServiceProbe;
    /// `%SystemRoot%` (`C:\Windows`).
    fn system_root(&self) -> Option<PathBuf>;
    /// Whether `path` names a file that exists.
    fn file_exists(&self, path: &Path) -> bool;
    /// The names of the subkeys of `hive\key`, `None` when the key does not exist.
    ///
    /// # Errors
    /// Why the key could not be read.
    fn subkeys(&self, hive: Hive, key: &str) -> Result<Option<Vec<String>>, String>;
    /// The default value of `hive\key` as text (`REG_EXPAND_SZ` expanded), `None` when the
    /// key or the value does not exist.
    ///
    /// # Errors
    /// Why it could not be read (a value that is not a string, access denied).
    fn default_value(&self, hive: Hive, key: &str) -> Result<Option<String>, String>;
    /// The newest `limit` events of `channel`, as XML, newest first.
    ///
    /// # Errors
    /// Why the channel could not be read.
    fn events(&self, channel: &str, limit: usize) -> Result<Vec<String>, String>;
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// Works, or may, but something deserves a look.
    Warning,
    /// gMSA containers will fail on this host until it is fixed.
    Failed,
}

impl Status {
    /// `ok`, `warning`, `failed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Failed => "failed",
        }
    }
}

/// One check and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Check {
    /// A stable name (`hcs_service`, `plugin_registration`, ...).
    pub name: &'static str,
    /// How it ended.
    pub status: Status,
    /// What was seen.
    pub detail: String,
    /// What to do next (`None` when the check is ok).
    pub next_step: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            next_step: None,
        }
    }

    fn warning(name: &'static str, detail: impl Into<String>, next: impl Into<String>) -> Self {
        Check {
            name,
            status: Status::Warning,
            detail: detail.into(),
            next_step: Some(next.into()),
        }
    }

    fn failed(name: &'static str, detail: impl Into<String>, next: impl Into<String>) -> Self {
        Check {
            name,
            status: Status::Failed,
            detail: detail.into(),
            next_step: Some(next.into()),
        }
    }
}

/// How many checks ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Summary {
    /// Checks that are ok.
    pub ok: usize,
    /// Checks with a warning.
    pub warnings: usize,
    /// Checks that failed.
    pub failed: usize,
}

/// What `doctor` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Report {
    /// Every check, in the order they ran.
    pub checks: Vec<Check>,
    /// The spec's `PluginGUID`, when a spec with one was given.
    pub plugin_guid: Option<String>,
    /// The container whose events were read (`--container`), made fit for messages.
    pub container: Option<String>,
    /// That container's recent CCG events, newest first (empty without a container).
    pub events: Vec<CcgEvent>,
    /// The counts.
    pub summary: Summary,
}

impl Report {
    /// Whether any check failed.
    #[must_use]
    pub fn any_failed(&self) -> bool {
        self.summary.failed > 0
    }
}

/// What to check beyond the host itself.
#[derive(Debug, Clone, Default)]
pub struct DoctorOptions {
    /// The `PluginGUID` of the credential spec given, if it has one.
    pub plugin_guid: Option<String>,
    /// Whether a spec was given at all (a spec without a plug-in is reported as such).
    pub spec_given: bool,
    /// The container whose CCG events to show.
    pub container: Option<String>,
}

/// Why `doctor` cannot run here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DoctorError {
    /// Not a Windows host.
    #[error(
        "credguard doctor checks a Windows host (the Containers feature, the vmcompute service, ccg.exe, the CCG plug-in registry keys and the CCG event log), and this is {os}: run it on the Windows node that runs the gMSA containers"
    )]
    NotWindows {
        /// `std::env::consts::OS`.
        os: &'static str,
    },
}

/// Whether this host can be checked: `Ok` on Windows, [`DoctorError::NotWindows`] elsewhere.
///
/// # Errors
/// [`DoctorError::NotWindows`] off Windows.
pub fn host_supported() -> Result<(), DoctorError> {
    if cfg!(windows) {
        Ok(())
    } else {
        Err(DoctorError::NotWindows {
            os: std::env::consts::OS,
        })
    }
}

/// The checks, against the real host: on Windows, `WindowsHost`; elsewhere
/// [`DoctorError::NotWindows`].
///
/// # Errors
/// [`DoctorError::NotWindows`] off Windows.
pub fn check_this_host(options: &DoctorOptions) -> Result<Report, DoctorError> {
    #[cfg(windows)]
    {
        Ok(run(&WindowsHost, options))
    }
    #[cfg(not(windows))]
    {
        let _ = options;
        Err(DoctorError::NotWindows {
            os: std::env::consts::OS,
        })
    }
}

/// Runs every check against `host`.
#[must_use]
pub fn run(host: &dyn Host, options: &DoctorOptions) -> Report {
    let mut checks = vec![containers_feature(host)];
    checks.push(hcs_service(host));
    checks.push(system_file(
        host,
        "ccg_exe",
        "ccg.exe",
        "Container Credential Guard, which HCS starts for each gMSA container",
        "install the Containers feature (it brings ccg.exe) and restart; on Windows Server 2019 install the latest cumulative update",
    ));
    checks.push(system_file(
        host,
        "computecore_dll",
        "computecore.dll",
        "the Host Compute Service API credguard calls",
        "run Windows 10 version 1809 / Windows Server 2019 or later with the Containers feature",
    ));
    if options.spec_given || options.plugin_guid.is_some() {
        checks.extend(plugin_checks(host, options.plugin_guid.as_deref()));
    }
    checks.push(wrong_comclasses_key(host));
    checks.push(stale_comclasses(host));
    checks.push(event_channel(host));
    let mut events = Vec::new();
    if let Some(container) = &options.container {
        let (check, found) = container_events(host, container);
        checks.push(check);
        events = found;
    }
    let mut summary = Summary::default();
    for c in &checks {
        match c.status {
            Status::Ok => summary.ok += 1,
            Status::Warning => summary.warnings += 1,
            Status::Failed => summary.failed += 1,
        }
    }
    Report {
        checks,
        plugin_guid: options.plugin_guid.clone(),
        container: options
            .container
            .as_deref()
            .map(|c| ShownId::new(c).to_string()),
        events,
        summary,
    }
}

const FEATURE_NEXT: &str = "enable the Containers feature and restart: `Install-WindowsFeature -Name Containers` (Windows Server) or `Enable-WindowsOptionalFeature -Online -FeatureName Containers -All` (Windows 10/11)";

fn containers_feature(host: &dyn Host) -> Check {
    const NAME: &str = "containers_feature";
    match host.service("vmcompute") {
        ServiceProbe::NotInstalled => Check::failed(
            NAME,
            "the Host Compute Service (vmcompute) is not installed: the Containers feature is not enabled",
            FEATURE_NEXT,
        ),
        ServiceProbe::Unknown(why) => Check::warning(
            NAME,
            format!("cannot ask the service control manager about vmcompute: {why}"),
            "run it again as an administrator",
        ),
        _ => Check::ok(
            NAME,
            "the Containers feature is enabled (the vmcompute service is installed)",
        ),
    }
}

fn hcs_service(host: &dyn Host) -> Check {
    const NAME: &str = "hcs_service";
    match host.service("vmcompute") {
        ServiceProbe::Running => Check::ok(NAME, "the Host Compute Service (vmcompute) is running"),
        ServiceProbe::NotRunning(state) => Check::failed(
            NAME,
            format!("the Host Compute Service (vmcompute) is {state}"),
            "start it: `Start-Service vmcompute` (and look at the System event log if it stops again)",
        ),
        ServiceProbe::NotInstalled => Check::failed(
            NAME,
            "the Host Compute Service (vmcompute) is not installed",
            FEATURE_NEXT,
        ),
        ServiceProbe::Unknown(why) => Check::warning(
            NAME,
            format!("cannot read the state of vmcompute: {why}"),
            "run it again as an administrator, or `Get-Service vmcompute`",
        ),
    }
}

fn system_file(host: &dyn Host, name: &'static str, file: &str, what: &str, next: &str) -> Check {
    let Some(root) = host.system_root() else {
        return Check::warning(
            name,
            format!("cannot look for {file}: %SystemRoot% is not set"),
            "run it from a normal Windows session (SystemRoot set)",
        );
    };
    let path = root.join("System32").join(file);
    let shown = crate::text::shown_path(&path.display().to_string());
    if host.file_exists(&path) {
        Check::ok(name, format!("{shown} is present"))
    } else {
        Check::failed(name, format!("{shown} is missing: it is {what}"), next)
    }
}

/// The checks of the spec's plug-in: the GUID's form, its `COMClasses` registration, its
/// COM class and DLL.
fn plugin_checks(host: &dyn Host, guid: Option<&str>) -> Vec<Check> {
    const FORM: &str = "plugin_guid";
    let Some(guid) = guid else {
        return vec![Check::ok(
            FORM,
            "the credential spec names no plug-in (PluginGUID): CCG uses the host's own domain membership",
        )];
    };
    let bare = guid.strip_prefix('{').and_then(|g| g.strip_suffix('}'));
    let shown = crate::credspec::syntax::shown(guid);
    if !bare.is_some_and(is_guid) {
        let why = if guid.eq_ignore_ascii_case(DOCS_PLACEHOLDER_PLUGIN_GUID) {
            " (it is the placeholder of Microsoft's documentation, not a GUID)"
        } else {
            ""
        };
        return vec![Check::failed(
            FORM,
            format!(
                "PluginGUID {shown} is not a braced GUID{why}: CCG cannot find a plug-in by it"
            ),
            "put the plug-in's CLSID in the spec, braced: {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}",
        )];
    }
    let named = KnownPlugin::by_guid(guid)
        .map_or_else(|| format!("the plug-in {shown}"), |p| p.description());
    let mut checks = vec![Check::ok(FORM, format!("the credential spec uses {named}"))];
    checks.push(plugin_registration(host, guid, &named));
    checks.push(plugin_com_class(host, guid, &named));
    checks
}

fn has_subkey(host: &dyn Host, key: &str, name: &str) -> Result<bool, String> {
    Ok(host
        .subkeys(Hive::LocalMachine, key)?
        .is_some_and(|names| names.iter().any(|n| n.eq_ignore_ascii_case(name))))
}

fn plugin_registration(host: &dyn Host, guid: &str, named: &str) -> Check {
    const NAME: &str = "plugin_registration";
    let right = format!(r"HKLM\{COMCLASSES_KEY}\{guid}");
    let register =
        format!("register it: `reg add \"{right}\" /f` (as the plug-in's installer does)");
    match has_subkey(host, COMCLASSES_KEY, guid) {
        Err(why) => Check::warning(
            NAME,
            format!("cannot read HKLM\\{COMCLASSES_KEY}: {why}"),
            "run it again as an administrator",
        ),
        Ok(true) => Check::ok(NAME, format!("{named} is registered with CCG: {right}")),
        Ok(false) => {
            let wrong = has_subkey(host, WRONG_COMCLASSES_KEY, guid).unwrap_or(false);
            if wrong {
                Check::failed(
                    NAME,
                    format!(
                        "{named} is registered under HKLM\\{WRONG_COMCLASSES_KEY}\\{guid}, a key some documents give and CCG never reads (CCG event 4: \"failed to instantiate the plugin ... Object was not found in registry\")"
                    ),
                    format!(
                        "{register}, then delete the wrong one: `reg delete \"HKLM\\{WRONG_COMCLASSES_KEY}\\{guid}\" /f`"
                    ),
                )
            } else {
                Check::failed(
                    NAME,
                    format!(
                        "{named} is not registered with CCG: {right} does not exist (CCG event 4: \"failed to instantiate the plugin ... Object was not found in registry\")"
                    ),
                    format!("install the plug-in (its installer registers it), or {register}"),
                )
            }
        }
    }
}

fn plugin_com_class(host: &dyn Host, guid: &str, named: &str) -> Check {
    const NAME: &str = "plugin_com_class";
    let key = format!(r"CLSID\{guid}\InprocServer32");
    match host.default_value(Hive::ClassesRoot, &key) {
        Err(why) => Check::failed(
            NAME,
            format!("cannot read HKCR\\{key}: {why}"),
            "reinstall the plug-in: its InprocServer32 default value must name its DLL (REG_SZ or REG_EXPAND_SZ)",
        ),
        Ok(None) => Check::failed(
            NAME,
            format!("{named} has no COM class: HKCR\\{key} has no default value naming its DLL"),
            "install the plug-in (its installer registers the COM class with `regsvr32 <plugin.dll>`)",
        ),
        Ok(Some(file)) if file.trim().is_empty() => Check::failed(
            NAME,
            format!("HKCR\\{key} names no file (its default value is empty)"),
            "reinstall the plug-in, or `regsvr32 <plugin.dll>`",
        ),
        Ok(Some(file)) => {
            let unquoted = file.trim().trim_matches('"');
            let shown = crate::text::shown_path(unquoted);
            if host.file_exists(Path::new(unquoted)) {
                Check::ok(
                    NAME,
                    format!("the COM class of {named} is {shown}, which exists"),
                )
            } else {
                Check::failed(
                    NAME,
                    format!(
                        "the COM class of {named} names {shown} (HKCR\\{key}), which does not exist"
                    ),
                    "reinstall the plug-in so that its DLL is where its registration says, or register the DLL where it is: `regsvr32 <path to the DLL>`",
                )
            }
        }
    }
}

/// Anything under the wrong key; the spec's own plug-in there is also reported as a failure
/// by `plugin_registration`.
fn wrong_comclasses_key(host: &dyn Host) -> Check {
    const NAME: &str = "wrong_comclasses_key";
    match host.subkeys(Hive::LocalMachine, WRONG_COMCLASSES_KEY) {
        Err(why) => Check::warning(
            NAME,
            format!("cannot read HKLM\\{WRONG_COMCLASSES_KEY}: {why}"),
            "run it again as an administrator",
        ),
        Ok(None) => Check::ok(
            NAME,
            format!(
                "nothing is registered under HKLM\\{WRONG_COMCLASSES_KEY}, the key CCG never reads"
            ),
        ),
        Ok(Some(names)) if names.is_empty() => Check::ok(
            NAME,
            format!("HKLM\\{WRONG_COMCLASSES_KEY} (a key CCG never reads) is empty"),
        ),
        Ok(Some(names)) => {
            let list = shown_list(&names);
            let detail = format!(
                "plug-ins registered under HKLM\\{WRONG_COMCLASSES_KEY}, a key some documents give and CCG never reads: {list}"
            );
            let next = format!(
                "register each under HKLM\\{COMCLASSES_KEY} instead (`reg add \"HKLM\\{COMCLASSES_KEY}\\{{GUID}}\" /f`) and delete HKLM\\{WRONG_COMCLASSES_KEY}"
            );
            Check::warning(NAME, detail, next)
        }
    }
}

fn stale_comclasses(host: &dyn Host) -> Check {
    const NAME: &str = "stale_comclasses";
    let names = match host.subkeys(Hive::LocalMachine, COMCLASSES_KEY) {
        Err(why) => {
            return Check::warning(
                NAME,
                format!("cannot read HKLM\\{COMCLASSES_KEY}: {why}"),
                "run it again as an administrator",
            );
        }
        Ok(None) => {
            return Check::ok(
                NAME,
                format!("no CCG plug-in is registered (HKLM\\{COMCLASSES_KEY} does not exist)"),
            );
        }
        Ok(Some(names)) => names,
    };
    let mut stale = Vec::new();
    let mut unreadable = Vec::new();
    for name in &names {
        match host.subkeys(Hive::ClassesRoot, &format!(r"CLSID\{name}")) {
            Ok(Some(_)) => {}
            Ok(None) => stale.push(name.clone()),
            Err(why) => {
                unreadable.push(format!("{} ({why})", crate::credspec::syntax::shown(name)));
            }
        }
    }
    if !stale.is_empty() {
        return Check::warning(
            NAME,
            format!(
                "registered with CCG but with no COM class (HKCR\\CLSID\\{{GUID}}) behind them, left by a plug-in that was uninstalled: {}",
                shown_list(&stale)
            ),
            format!(
                "delete each stale entry (`reg delete \"HKLM\\{COMCLASSES_KEY}\\{{GUID}}\" /f`), or reinstall the plug-in a credential spec still names"
            ),
        );
    }
    if !unreadable.is_empty() {
        return Check::warning(
            NAME,
            format!("cannot read the COM class of: {}", unreadable.join(", ")),
            "run it again as an administrator",
        );
    }
    let count = names.len();
    Check::ok(
        NAME,
        format!(
            "{count} plug-in{} registered with CCG, each with its COM class{}",
            if count == 1 { "" } else { "s" },
            if count == 0 {
                String::new()
            } else {
                format!(": {}", shown_list(&names))
            }
        ),
    )
}

fn event_channel(host: &dyn Host) -> Check {
    const NAME: &str = "ccg_event_channel";
    match host.subkeys(Hive::LocalMachine, CCG_CHANNEL_KEY) {
        Ok(Some(_)) => Check::ok(NAME, format!("the CCG event channel {CCG_CHANNEL} exists")),
        Ok(None) => Check::warning(
            NAME,
            format!(
                "the CCG event channel {CCG_CHANNEL} does not exist: CCG's errors are logged nowhere you can read them"
            ),
            "install the latest cumulative update (Windows Server 2019 Core lacked the channel until a 2023 update)",
        ),
        Err(why) => Check::warning(
            NAME,
            format!("cannot read HKLM\\{CCG_CHANNEL_KEY}: {why}"),
            "run it again as an administrator",
        ),
    }
}

fn container_events(host: &dyn Host, container: &str) -> (Check, Vec<CcgEvent>) {
    const NAME: &str = "container_events";
    let shown = ShownId::new(container).to_string();
    let xmls = match host.events(CCG_CHANNEL, EVENTS_READ) {
        Ok(x) => x,
        Err(why) => {
            return (
                Check::warning(
                    NAME,
                    format!("cannot read the CCG event channel {CCG_CHANNEL}: {why}"),
                    "run it again as an administrator, or read it with `Get-WinEvent -LogName Microsoft-Windows-Containers-CCG/Admin`",
                ),
                Vec::new(),
            );
        }
    };
    let found: Vec<CcgEvent> = xmls
        .iter()
        .filter(|x| events::mentions(x, container))
        .filter_map(|x| events::parse(x))
        .take(EVENTS_SHOWN)
        .collect();
    let check = if found.is_empty() {
        Check::ok(
            NAME,
            format!("no CCG event mentions the container {shown} among the newest {EVENTS_READ}"),
        )
    } else if found.iter().any(|e| e.error) {
        Check::failed(
            NAME,
            format!(
                "{} CCG event{} for the container {shown}, with errors (listed below)",
                found.len(),
                if found.len() == 1 { "" } else { "s" }
            ),
            "fix what the newest error event says (its meaning is given), then start the container again",
        )
    } else {
        Check::ok(
            NAME,
            format!(
                "{} CCG event{} for the container {shown}, none an error",
                found.len(),
                if found.len() == 1 { "" } else { "s" }
            ),
        )
    };
    (check, found)
}

/// Names made fit for messages, comma-separated.
fn shown_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| crate::credspec::syntax::shown(n))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
