//! The real host, read through `credguard-winapi`: the service control manager, the file
//! system, the registry and the event log.

use std::path::{Path, PathBuf};

use credguard_winapi::eventlog::newest_events;
use credguard_winapi::registry::{RegKey, RegRoot, TextError};
use credguard_winapi::service::{ServiceState, service_state};
use credguard_winapi::wide::WideCString;
use credguard_winapi::win32_error;

use super::{Hive, Host, ServiceProbe};

/// `ERROR_FILE_NOT_FOUND`.
const ERROR_FILE_NOT_FOUND: u32 = 2;
/// `ERROR_SERVICE_DOES_NOT_EXIST`.
const ERROR_SERVICE_DOES_NOT_EXIST: u32 = 1060;

/// This Windows host.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowsHost;

fn root(hive: Hive) -> RegRoot {
    match hive {
        Hive::LocalMachine => RegRoot::LocalMachine,
        Hive::ClassesRoot => RegRoot::ClassesRoot,
    }
}

fn wide(text: &str) -> Result<WideCString, String> {
    WideCString::new(text).map_err(|e| e.to_string())
}

/// The key, `None` when it does not exist.
fn open(hive: Hive, key: &str) -> Result<Option<RegKey>, String> {
    match RegKey::open(root(hive), &wide(key)?) {
        Ok(k) => Ok(Some(k)),
        Err(ERROR_FILE_NOT_FOUND) => Ok(None),
        Err(code) => Err(win32_error(code).to_string()),
    }
}

impl Host for WindowsHost {
    fn service(&self, name: &str) -> ServiceProbe {
        let Ok(name) = wide(name) else {
            return ServiceProbe::NotInstalled;
        };
        match service_state(&name) {
            Ok(ServiceState::Running) => ServiceProbe::Running,
            Ok(ServiceState::Stopped) => ServiceProbe::NotRunning("stopped".into()),
            Ok(ServiceState::StartPending) => ServiceProbe::NotRunning("starting".into()),
            Ok(ServiceState::StopPending) => ServiceProbe::NotRunning("stopping".into()),
            Ok(ServiceState::Other(n)) => ServiceProbe::NotRunning(format!("in state {n}")),
            Err(ERROR_SERVICE_DOES_NOT_EXIST) => ServiceProbe::NotInstalled,
            Err(code) => ServiceProbe::Unknown(win32_error(code).to_string()),
        }
    }

    fn system_root(&self) -> Option<PathBuf> {
        std::env::var_os("SystemRoot")
            .filter(|r| !r.is_empty())
            .map(PathBuf::from)
    }

    fn file_exists(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn subkeys(&self, hive: Hive, key: &str) -> Result<Option<Vec<String>>, String> {
        let Some(k) = open(hive, key)? else {
            return Ok(None);
        };
        k.subkeys()
            .map(Some)
            .map_err(|code| win32_error(code).to_string())
    }

    fn default_value(&self, hive: Hive, key: &str) -> Result<Option<String>, String> {
        let Some(k) = open(hive, key)? else {
            return Ok(None);
        };
        match k.query_text(&wide("")?) {
            Ok(text) => Ok(Some(text)),
            Err(TextError::Win32(ERROR_FILE_NOT_FOUND)) => Ok(None),
            Err(TextError::Win32(code)) => Err(win32_error(code).to_string()),
            Err(TextError::NotAString(kind)) => Err(format!(
                "the default value is of registry type {kind}, not a string (REG_SZ or REG_EXPAND_SZ)"
            )),
            Err(TextError::NotText) => Err("the default value is not UTF-16 text".into()),
        }
    }

    fn events(&self, channel: &str, limit: usize) -> Result<Vec<String>, String> {
        newest_events(&wide(channel)?, &wide("*")?, limit)
            .map_err(|code| win32_error(code).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_is_none_and_a_present_one_lists_its_subkeys() {
        let host = WindowsHost;
        assert_eq!(
            host.subkeys(Hive::LocalMachine, r"SOFTWARE\credguard-no-such-key")
                .unwrap(),
            None
        );
        let names = host
            .subkeys(Hive::LocalMachine, "SOFTWARE")
            .unwrap()
            .unwrap();
        assert!(names.iter().any(|n| n.eq_ignore_ascii_case("Microsoft")));
        assert_eq!(
            host.default_value(
                Hive::ClassesRoot,
                r"CLSID\{00000000-0000-0000-0000-000000000001}\InprocServer32"
            )
            .unwrap(),
            None
        );
        assert!(host.system_root().is_some());
        assert_eq!(
            host.service("credguard-no-such-service"),
            ServiceProbe::NotInstalled
        );
    }

    /// On a Windows container host, as an administrator: `cargo test -p credguard --lib --
    /// --ignored doctor` (docs/WINDOWS.md, "Doctor on a real host").
    #[test]
    #[ignore = "real Windows host with the Containers feature only"]
    fn doctor_on_a_container_host() {
        let report = super::super::run(&WindowsHost, &super::super::DoctorOptions::default());
        for name in [
            "containers_feature",
            "hcs_service",
            "ccg_exe",
            "computecore_dll",
            "ccg_event_channel",
        ] {
            let check = report.checks.iter().find(|c| c.name == name).unwrap();
            assert_eq!(check.status, super::super::Status::Ok, "{check:?}");
        }
    }
}
