//! Container documents carrying a CCG instance: golden documents in hcsshim's field order
//! (ComputeSystem: Owner, SchemaVersion, HostingSystemId, HostedSystem, Container, ...;
//! HostedSystem: SchemaVersion, Container), and a runtime's own fields kept.

mod common;

use credguard::wire::container::{
    ComputeSystem, HostedSystem, hyperv_hosted, place_in_compute_system, place_in_v1,
    process_isolated,
};
use credguard::wire::{ContainerCredentialGuardInstance, Transport, find_instance, to_wire};

use common::{CS1, fixture};

fn instance(transport: Transport) -> ContainerCredentialGuardInstance {
    let doc = fixture("golden/s5_service_properties.json");
    let id = match transport {
        Transport::HvSocket => "c0ffee00-0000-4000-8000-000000000001",
        _ => "a3f1c2d4e5b60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
    };
    find_instance(&doc, id).unwrap().unwrap()
}

#[test]
fn process_isolation_compute_system() {
    let doc = process_isolated("credguard-test", &instance(Transport::Lrpc)).unwrap();
    assert_eq!(
        to_wire(&doc).unwrap(),
        fixture("compute_system_process.json")
    );
    let back: ComputeSystem =
        serde_json::from_str(&fixture("compute_system_process.json")).unwrap();
    assert_eq!(back, doc);
}

#[test]
fn hyperv_hosted_system() {
    let doc = hyperv_hosted(&instance(Transport::HvSocket)).unwrap();
    assert_eq!(to_wire(&doc).unwrap(), fixture("hosted_system_hyperv.json"));
    let back: HostedSystem = serde_json::from_str(&fixture("hosted_system_hyperv.json")).unwrap();
    assert_eq!(back, doc);
}

#[test]
fn a_runtime_document_keeps_its_fields() {
    let mut doc: ComputeSystem = serde_json::from_str(
        r#"{"Owner":"containerd","SchemaVersion":{"Major":2,"Minor":1},"Container":{"Storage":{"Layers":[]},"Networking":{"Namespace":"ns"}},"ShouldTerminateOnLastHandleClosed":true}"#,
    )
    .unwrap();
    place_in_compute_system(&mut doc, &instance(Transport::Lrpc)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&to_wire(&doc).unwrap()).unwrap();
    assert_eq!(v["Container"]["Networking"]["Namespace"], "ns");
    assert_eq!(v["ShouldTerminateOnLastHandleClosed"], true);
    assert_eq!(
        v["Container"]["ContainerCredentialGuard"]["Transport"],
        "LRPC"
    );
    assert_eq!(
        v["Container"]["ContainerCredentialGuard"]["CredentialSpec"],
        CS1
    );
}

#[test]
fn an_instance_without_state_is_refused() {
    let bare = ContainerCredentialGuardInstance {
        id: "x".into(),
        ..Default::default()
    };
    let err = process_isolated("o", &bare).unwrap_err();
    assert!(err.to_string().contains("CredentialGuard"));
    assert!(hyperv_hosted(&bare).is_err());
}

#[test]
fn v1_credentials_field() {
    let mut doc = serde_json::Map::new();
    doc.insert("SystemType".into(), "Container".into());
    place_in_v1(&mut doc, CS1);
    assert_eq!(doc["Credentials"], CS1);
}
