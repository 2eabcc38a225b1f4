//! `CcgClient::plan`: what a create would send, without sending it. The plan's documents
//! are byte for byte what the create then sends (the emulator's call log), and a plan makes
//! the create's checks with the create's errors.

use std::sync::Arc;

use credguard::credspec::load_arg;
use credguard::hcs::HcsOperation;
use credguard::lifecycle::PLACEHOLDER_SERVICE_ID;
use credguard::wire::to_wire;
use credguard::{CcgClient, CreateRequest, ErrorKind, Isolation, SpecRequest};
use credguard_emulator::Emulator;

const CS1: &str = r#"{"CmsPlugins":["ActiveDirectory"],"DomainJoinConfig":{"Sid":"S-1-5-21-1-2-3","MachineAccountName":"webapp01","Guid":"11111111-2222-3333-4444-555555555555","DnsTreeName":"contoso.com","DnsName":"contoso.com","NetBiosName":"CONTOSO"},"ActiveDirectoryConfig":{"GroupManagedServiceAccounts":[{"Name":"webapp01","Scope":"contoso.com"},{"Name":"webapp01","Scope":"CONTOSO"}]}}"#;

fn setup() -> (Arc<Emulator>, CcgClient) {
    let emu = Arc::new(Emulator::in_memory());
    let client = CcgClient::new(emu.clone());
    (emu, client)
}

/// (api, target, document) of every call the emulator received.
fn sent(emu: &Emulator) -> Vec<(String, Option<String>, String)> {
    emu.calls()
        .unwrap()
        .into_iter()
        .map(|c| (c.api.name().to_owned(), c.target, c.document))
        .collect()
}

fn planned(plan: &credguard::Plan) -> Vec<(String, Option<String>, String)> {
    plan.calls
        .iter()
        .map(|c| {
            (
                c.operation.api_name().to_owned(),
                c.target.clone(),
                c.document.clone(),
            )
        })
        .collect()
}

#[test]
fn a_process_plan_is_byte_for_byte_what_create_sends() {
    let (emu, client) = setup();
    let req = CreateRequest::new("p1", CS1, Isolation::Process);
    let plan = client.plan(&req).unwrap();
    assert!(emu.calls().unwrap().is_empty(), "a plan sends nothing");
    assert_eq!(plan.container_id, "p1");
    assert_eq!(plan.modifying_calls().count(), 1);
    // The request plans alone, without a client or a backend: the same plan.
    assert_eq!(req.plan().unwrap(), plan);

    let (_, handle) = client.create_request(&req).unwrap();
    handle.detach();
    assert_eq!(planned(&plan), sent(&emu));
    assert!(plan.calls.iter().all(|c| c.from_answer.is_empty()));
}

#[test]
fn a_hyperv_plan_names_the_utility_vm_and_what_only_hcs_answers() {
    let (emu, client) = setup();
    emu.create_uvm("uvm-1").unwrap();
    let req = CreateRequest::new("h1", CS1, Isolation::HyperV).with_utility_vm("uvm-1");
    let plan = client.plan(&req).unwrap();
    assert!(emu.calls().unwrap().is_empty(), "a plan sends nothing");
    let (instance, handle) = client.create_request(&req).unwrap();
    handle.detach();

    let sent = sent(&emu);
    let planned = planned(&plan);
    assert_eq!(planned.len(), 4);
    assert_eq!(planned.len(), sent.len());
    // The query, AddInstance (Transport HvSocket) and the read-back are final.
    assert_eq!(planned[..3], sent[..3]);
    assert!(planned[1].2.contains(r#""Transport":"HvSocket""#));
    // The hot-add: on the utility VM, with the ServiceId and ServiceConfig HCS chose; the
    // plan's placeholders filled in with them give the document sent, byte for byte.
    let hot_add = &plan.calls[3];
    assert_eq!(hot_add.operation, HcsOperation::ModifyComputeSystem);
    assert_eq!(hot_add.target.as_deref(), Some("uvm-1"));
    assert_eq!(
        hot_add.from_answer,
        ["HvSocketConfig.ServiceId", "HvSocketConfig.ServiceConfig"]
    );
    let hv = instance.hv_socket_config.unwrap();
    let placeholder_settings = to_wire(&credguard::wire::HvSocketServiceConfig::default()).unwrap();
    let settings = to_wire(&hv.service_config.unwrap()).unwrap();
    let placeholder_id = to_wire(&PLACEHOLDER_SERVICE_ID).unwrap();
    let placeholder_id = placeholder_id.trim_matches('"');
    assert!(
        hot_add.document.contains(placeholder_id),
        "{}",
        hot_add.document
    );
    let filled = hot_add
        .document
        .replace(placeholder_id, &hv.service_id)
        .replace(&placeholder_settings, &settings);
    assert_eq!(sent[3].0, "HcsModifyComputeSystem");
    assert_eq!(sent[3].1.as_deref(), Some("uvm-1"));
    assert_eq!(filled, sent[3].2);
}

#[test]
fn a_plan_refuses_what_create_refuses_with_the_same_error() {
    let (emu, client) = setup();
    let cases = [
        CreateRequest::new("", CS1, Isolation::Process),
        CreateRequest::new("bad\u{202e}id", CS1, Isolation::Process),
        CreateRequest::new("c", "[1]", Isolation::Process),
        CreateRequest::new("c", CS1, Isolation::Process).with_utility_vm("uvm"),
        CreateRequest::new("c", CS1, Isolation::HyperV).with_utility_vm(" uvm"),
        CreateRequest::new("c", CS1, Isolation::Process).with_gmsa_disabled("the annotation"),
    ];
    for req in cases {
        let planned = client.plan(&req).unwrap_err();
        let created = client.create_request(&req).unwrap_err();
        assert_eq!(planned.to_string(), created.to_string());
        assert_eq!(planned.kind(), created.kind());
    }
    // The client's policy too.
    let denied = client.clone().with_gmsa_disabled("policy");
    let req = CreateRequest::new("c", CS1, Isolation::Process);
    let planned = denied.plan(&req).unwrap_err();
    assert_eq!(planned.kind(), ErrorKind::Denied);
    assert_eq!(
        planned.to_string(),
        denied.create_request(&req).unwrap_err().to_string()
    );
    assert!(emu.calls().unwrap().is_empty(), "nothing was sent");
}

#[test]
fn a_spec_plan_refuses_a_denied_source_and_sends_the_canonical_spec() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, client) = setup();
    // A bundle config whose annotation disables gMSA: the plan refuses it as create does.
    let config = serde_json::json!({
        "ociVersion": "1.1.0",
        "annotations": {"io.microsoft.container.wcow.gmsa.disable": "true"},
        "windows": {"credentialSpec": CS1},
    });
    let path = dir.path().join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let spec = load_arg(&path.display().to_string(), dir.path()).unwrap();
    let req = SpecRequest::new("denied", &spec, Isolation::Process);
    let planned = client.plan_spec(&req).unwrap_err();
    assert_eq!(planned.kind(), ErrorKind::Denied);
    assert_eq!(
        planned.to_string(),
        client.create_spec_request(&req).unwrap_err().to_string()
    );
    assert!(req.check().is_err());
    assert!(emu.calls().unwrap().is_empty());

    // A spec with a BOM and spaces: the plan shows the canonical form create sends.
    let path = dir.path().join("spec.json");
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(CS1).unwrap())
            .unwrap();
    std::fs::write(&path, format!("\u{feff}{pretty}")).unwrap();
    let spec = load_arg(&path.display().to_string(), dir.path()).unwrap();
    let req = SpecRequest::new("s1", &spec, Isolation::Process);
    let plan = client.plan_spec(&req).unwrap();
    let (_, handle) = client.create_spec_request(&req).unwrap();
    handle.detach();
    assert_eq!(
        planned_docs(&plan),
        sent(&emu).into_iter().map(|c| c.2).collect::<Vec<_>>()
    );
}

fn planned_docs(plan: &credguard::Plan) -> Vec<String> {
    plan.calls.iter().map(|c| c.document.clone()).collect()
}

#[test]
fn a_plan_serialises_its_documents_as_json() {
    let (_, client) = setup();
    let plan = client
        .plan(&CreateRequest::new("j1", CS1, Isolation::Process))
        .unwrap();
    let v = serde_json::to_value(&plan).unwrap();
    assert_eq!(v["container_id"], "j1");
    let calls = v["calls"].as_array().unwrap();
    assert_eq!(calls[1]["api"], "HcsModifyServiceSettings");
    assert_eq!(calls[1]["purpose"], "AddInstance");
    assert_eq!(
        calls[1]["document"]["Settings"]["OperationDetails"]["Transport"],
        "LRPC"
    );
    assert!(calls[1].get("from_answer").is_none());
}
