//! The checks against a host made of maps: each way a plug-in registration goes wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::*;

const AKV: &str = "{CCC2A336-D7F3-4818-A213-272B7924213E}";
const OTHER: &str = "{11111111-2222-3333-4444-555555555555}";

/// Keys as `HKLM\...` / `HKCR\...` paths (case-insensitive), default values, files.
#[derive(Default)]
struct FakeHost {
    vmcompute: Option<ServiceProbe>,
    keys: BTreeSet<String>,
    defaults: BTreeMap<String, String>,
    files: BTreeSet<PathBuf>,
    events: Vec<String>,
}

fn full(hive: Hive, key: &str) -> String {
    format!("{}\\{key}", hive.prefix()).to_ascii_lowercase()
}

impl FakeHost {
    /// A healthy container host with no plug-in.
    fn healthy() -> Self {
        let mut h = FakeHost {
            vmcompute: Some(ServiceProbe::Running),
            ..FakeHost::default()
        };
        h.files.insert(
            PathBuf::from(r"C:\Windows")
                .join("System32")
                .join("ccg.exe"),
        );
        h.files.insert(
            PathBuf::from(r"C:\Windows")
                .join("System32")
                .join("computecore.dll"),
        );
        h.key(Hive::LocalMachine, CCG_CHANNEL_KEY);
        h
    }

    fn key(&mut self, hive: Hive, key: &str) -> &mut Self {
        // Every parent exists too.
        let mut path = String::new();
        for part in key.split('\\') {
            if !path.is_empty() {
                path.push('\\');
            }
            path.push_str(part);
            self.keys.insert(full(hive, &path));
        }
        self
    }

    /// A plug-in registered the right way, its DLL present.
    fn plugin(&mut self, guid: &str, dll: &str) -> &mut Self {
        self.key(Hive::LocalMachine, &format!(r"{COMCLASSES_KEY}\{guid}"));
        self.key(Hive::ClassesRoot, &format!(r"CLSID\{guid}\InprocServer32"));
        self.defaults.insert(
            full(Hive::ClassesRoot, &format!(r"CLSID\{guid}\InprocServer32")),
            dll.to_owned(),
        );
        self
    }
}

impl Host for FakeHost {
    fn service(&self, name: &str) -> ServiceProbe {
        assert_eq!(name, "vmcompute");
        self.vmcompute.clone().unwrap_or(ServiceProbe::NotInstalled)
    }
    fn system_root(&self) -> Option<PathBuf> {
        Some(PathBuf::from(r"C:\Windows"))
    }
    fn file_exists(&self, path: &Path) -> bool {
        self.files.contains(path)
    }
    fn subkeys(&self, hive: Hive, key: &str) -> Result<Option<Vec<String>>, String> {
        let me = full(hive, key);
        if !self.keys.contains(&me) {
            return Ok(None);
        }
        let prefix = format!("{me}\\");
        Ok(Some(
            self.keys
                .iter()
                .filter_map(|k| k.strip_prefix(&prefix))
                .filter(|rest| !rest.contains('\\'))
                .map(str::to_ascii_uppercase)
                .collect(),
        ))
    }
    fn default_value(&self, hive: Hive, key: &str) -> Result<Option<String>, String> {
        Ok(self.defaults.get(&full(hive, key)).cloned())
    }
    fn events(&self, channel: &str, _limit: usize) -> Result<Vec<String>, String> {
        assert_eq!(channel, CCG_CHANNEL);
        Ok(self.events.clone())
    }
}

fn check<'a>(report: &'a Report, name: &str) -> &'a Check {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#?}"))
}

fn with_plugin(guid: &str) -> DoctorOptions {
    DoctorOptions {
        plugin_guid: Some(guid.to_owned()),
        spec_given: true,
        container: None,
    }
}

#[test]
fn a_healthy_host_without_a_spec_is_all_ok() {
    let report = run(&FakeHost::healthy(), &DoctorOptions::default());
    assert!(!report.any_failed(), "{report:#?}");
    assert_eq!(report.summary.warnings, 0, "{report:#?}");
    let names: Vec<_> = report.checks.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "containers_feature",
            "hcs_service",
            "ccg_exe",
            "computecore_dll",
            "wrong_comclasses_key",
            "stale_comclasses",
            "ccg_event_channel"
        ]
    );
    assert!(report.checks.iter().all(|c| c.next_step.is_none()));
}

#[test]
fn no_containers_feature_fails_with_how_to_enable_it() {
    let mut host = FakeHost::healthy();
    host.vmcompute = None;
    host.files.clear();
    let report = run(&host, &DoctorOptions::default());
    let c = check(&report, "containers_feature");
    assert_eq!(c.status, Status::Failed);
    assert!(
        c.next_step
            .as_deref()
            .unwrap()
            .contains("Install-WindowsFeature -Name Containers")
    );
    assert_eq!(check(&report, "ccg_exe").status, Status::Failed);
    assert!(check(&report, "ccg_exe").detail.contains("ccg.exe"));

    host.vmcompute = Some(ServiceProbe::NotRunning("stopped".into()));
    let report = run(&host, &DoctorOptions::default());
    assert_eq!(check(&report, "containers_feature").status, Status::Ok);
    let c = check(&report, "hcs_service");
    assert_eq!(c.status, Status::Failed);
    assert!(c.detail.contains("stopped"), "{c:?}");
    assert!(
        c.next_step
            .as_deref()
            .unwrap()
            .contains("Start-Service vmcompute")
    );
}

#[test]
fn a_correctly_registered_plugin_with_its_dll_is_ok() {
    let mut host = FakeHost::healthy();
    let dll = r"C:\Program Files\Plugin\plugin.dll";
    host.plugin(AKV, dll);
    host.files.insert(PathBuf::from(dll));
    let report = run(&host, &with_plugin(AKV));
    assert!(!report.any_failed(), "{report:#?}");
    assert_eq!(report.summary.warnings, 0, "{report:#?}");
    assert!(
        check(&report, "plugin_guid")
            .detail
            .contains("Azure Key Vault")
    );
    assert!(
        check(&report, "plugin_registration")
            .detail
            .contains(COMCLASSES_KEY)
    );
    assert!(
        check(&report, "plugin_com_class")
            .detail
            .contains("plugin.dll")
    );
    // The GUID's case does not matter.
    let report = run(&host, &with_plugin(&AKV.to_ascii_lowercase()));
    assert!(!report.any_failed(), "{report:#?}");
}

#[test]
fn a_plugin_under_the_wrongly_documented_key_is_called_out() {
    let mut host = FakeHost::healthy();
    host.key(
        Hive::LocalMachine,
        &format!(r"{WRONG_COMCLASSES_KEY}\{AKV}"),
    );
    let report = run(&host, &with_plugin(AKV));
    let c = check(&report, "plugin_registration");
    assert_eq!(c.status, Status::Failed);
    assert!(c.detail.contains(WRONG_COMCLASSES_KEY), "{c:?}");
    assert!(c.detail.contains("never reads"), "{c:?}");
    let next = c.next_step.as_deref().unwrap();
    assert!(
        next.contains(COMCLASSES_KEY) && next.contains("reg delete"),
        "{next}"
    );
    let w = check(&report, "wrong_comclasses_key");
    assert_eq!(w.status, Status::Warning);
    assert!(w.detail.contains(AKV), "{w:?}");
    // Without a spec, the wrong key is still called out.
    let report = run(&host, &DoctorOptions::default());
    assert_eq!(
        check(&report, "wrong_comclasses_key").status,
        Status::Warning
    );
}

#[test]
fn a_plugin_not_registered_at_all_fails() {
    let report = run(&FakeHost::healthy(), &with_plugin(AKV));
    let c = check(&report, "plugin_registration");
    assert_eq!(c.status, Status::Failed);
    assert!(c.detail.contains("does not exist"), "{c:?}");
    let com = check(&report, "plugin_com_class");
    assert_eq!(com.status, Status::Failed);
    assert!(com.detail.contains("no COM class"), "{com:?}");
}

#[test]
fn a_com_class_whose_dll_is_missing_fails_naming_the_file() {
    let mut host = FakeHost::healthy();
    host.plugin(AKV, r"C:\gone\plugin.dll");
    let report = run(&host, &with_plugin(AKV));
    assert_eq!(check(&report, "plugin_registration").status, Status::Ok);
    let c = check(&report, "plugin_com_class");
    assert_eq!(c.status, Status::Failed);
    assert!(c.detail.contains(r"C:\gone\plugin.dll") && c.detail.contains("does not exist"));
    assert!(c.next_step.as_deref().unwrap().contains("regsvr32"));
    // A quoted path is the file inside the quotes.
    let mut host = FakeHost::healthy();
    host.plugin(AKV, r#""C:\p\plugin.dll""#);
    host.files.insert(PathBuf::from(r"C:\p\plugin.dll"));
    assert_eq!(
        check(&run(&host, &with_plugin(AKV)), "plugin_com_class").status,
        Status::Ok
    );
}

#[test]
fn stale_comclasses_entries_are_listed() {
    let mut host = FakeHost::healthy();
    host.plugin(AKV, r"C:\p.dll");
    host.key(Hive::LocalMachine, &format!(r"{COMCLASSES_KEY}\{OTHER}"));
    let report = run(&host, &DoctorOptions::default());
    let c = check(&report, "stale_comclasses");
    assert_eq!(c.status, Status::Warning);
    assert!(c.detail.contains(OTHER) && !c.detail.contains(AKV), "{c:?}");
    assert!(c.next_step.as_deref().unwrap().contains("reg delete"));
}

#[test]
fn a_spec_without_a_plugin_and_a_malformed_guid() {
    let options = DoctorOptions {
        spec_given: true,
        ..DoctorOptions::default()
    };
    let report = run(&FakeHost::healthy(), &options);
    assert_eq!(check(&report, "plugin_guid").status, Status::Ok);
    assert!(
        report
            .checks
            .iter()
            .all(|c| c.name != "plugin_registration")
    );

    let report = run(
        &FakeHost::healthy(),
        &with_plugin("{GDMA0342-266A-4D1P-831J-20990E82944F}"),
    );
    let c = check(&report, "plugin_guid");
    assert_eq!(c.status, Status::Failed);
    assert!(c.detail.contains("placeholder"), "{c:?}");
}

#[test]
fn a_missing_event_channel_is_a_warning() {
    let mut host = FakeHost::healthy();
    host.keys.clear();
    let report = run(&host, &DoctorOptions::default());
    let c = check(&report, "ccg_event_channel");
    assert_eq!(c.status, Status::Warning);
    assert!(c.detail.contains(CCG_CHANNEL));
}

#[test]
fn the_container_events_are_found_with_their_meaning() {
    let mut host = FakeHost::healthy();
    let event = |id: u32, level: u8, data: &str| {
        format!(
            "<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='Microsoft-Windows-Containers-CCG'/><EventID Qualifiers='0'>{id}</EventID><Level>{level}</Level><TimeCreated SystemTime='2026-12-02T03:00:00.1234567Z'/></System><EventData><Data>{data}</Data></EventData></Event>"
        )
    };
    host.events = vec![
        event(4, 2, "failed to instantiate the plugin for container WEB-1"),
        event(1, 4, "container other"),
        event(7, 4, "web-1 secret=hunter2"),
    ];
    let options = DoctorOptions {
        container: Some("web-1".into()),
        ..DoctorOptions::default()
    };
    let report = run(&host, &options);
    assert_eq!(report.events.len(), 2, "{report:#?}");
    assert_eq!(report.events[0].event_id, 4);
    assert!(report.events[0].error);
    assert_eq!(
        report.events[0].time.as_deref(),
        Some("2026-12-02T03:00:00.1234567Z")
    );
    // The meaning is explain's entry for CCG event 4.
    assert!(
        report.events[0]
            .meaning
            .contains("failed to instantiate the plugin")
            && report.events[0].meaning.contains(r"Control\CCG\COMClasses"),
        "{}",
        report.events[0].meaning
    );
    assert!(report.events[1].meaning.contains("does not know"));
    assert_eq!(check(&report, "container_events").status, Status::Failed);
    let json = serde_json::to_string(&report).unwrap();
    assert!(
        !json.contains("hunter2"),
        "event text must never be shown: {json}"
    );
    assert_eq!(report.container.as_deref(), Some("web-1"));

    let report = run(
        &host,
        &DoctorOptions {
            container: Some("absent".into()),
            ..DoctorOptions::default()
        },
    );
    assert!(report.events.is_empty());
    assert_eq!(check(&report, "container_events").status, Status::Ok);
}

#[test]
fn the_json_shape_is_snake_case_with_a_summary() {
    let report = run(&FakeHost::healthy(), &with_plugin(AKV));
    let v = serde_json::to_value(&report).unwrap();
    let first = &v["checks"][0];
    assert_eq!(first["name"], "containers_feature");
    assert_eq!(first["status"], "ok");
    assert!(first["detail"].is_string());
    assert!(first["next_step"].is_null());
    assert_eq!(v["plugin_guid"], AKV);
    assert!(v["summary"]["failed"].as_u64().unwrap() >= 1);
    assert!(v["events"].as_array().unwrap().is_empty());
}

#[test]
fn off_windows_the_error_says_it_checks_a_windows_host() {
    if cfg!(windows) {
        return;
    }
    let err = check_this_host(&DoctorOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("checks a Windows host"), "{text}");
    assert!(text.contains(std::env::consts::OS), "{text}");
}
