//! Every wire document of the CCG flow, compared with what hcsshim's own Go structs
//! produce (fixtures/golden, made by json.Marshal): byte for byte, and parsed back.

mod common;

use common::{CS1, fixture};
use credguard::wire::{
    Container, ContainerCredentialGuardHvSocketServiceConfig, ContainerCredentialGuardInstance,
    ContainerCredentialGuardState, ContainerCredentialGuardSystemInfo, HvSocketServiceConfig,
    ModificationRequest, ModifySettingRequest, PropertyQuery, ServiceProperties, Transport,
    find_instance, list_instances, to_wire,
};
use serde_json::value::RawValue;

const ID1: &str = "a3f1c2d4e5b60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const ID2: &str = "c0ffee00-0000-4000-8000-000000000001";
const SDDL: &str = "D:P(A;;FA;;;SY)(A;;FA;;;BA)";

fn golden(name: &str) -> String {
    fixture(&format!("golden/{name}"))
}

fn same_value(ours: &str, theirs: &str) {
    let a: serde_json::Value = serde_json::from_str(ours).unwrap();
    let b: serde_json::Value = serde_json::from_str(theirs).unwrap();
    assert_eq!(a, b);
}

fn service_config() -> HvSocketServiceConfig {
    HvSocketServiceConfig {
        bind_security_descriptor: SDDL.into(),
        connect_security_descriptor: SDDL.into(),
        allow_wildcard_binds: true,
        disabled: false,
    }
}

fn inst1() -> ContainerCredentialGuardInstance {
    ContainerCredentialGuardInstance {
        id: ID1.into(),
        credential_guard: Some(ContainerCredentialGuardState {
            cookie: "010000005b000a008aece80e3730ca448405fc42567cedc4".into(),
            rpc_endpoint: "CcgRpc_a3f1c2d4".into(),
            transport: Transport::Lrpc,
            credential_spec: CS1.into(),
        }),
        hv_socket_config: None,
    }
}

fn inst2() -> ContainerCredentialGuardInstance {
    ContainerCredentialGuardInstance {
        id: ID2.into(),
        credential_guard: Some(ContainerCredentialGuardState {
            cookie: "01000000aa000b0011223344556677889900aabbccddeeff".into(),
            rpc_endpoint: "CcgRpc_c0ffee00".into(),
            transport: Transport::HvSocket,
            credential_spec: CS1.into(),
        }),
        hv_socket_config: Some(ContainerCredentialGuardHvSocketServiceConfig {
            service_id: "e5b1f7a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b".into(),
            service_config: Some(service_config()),
        }),
    }
}

#[test]
fn s1_add_instance_lrpc() {
    let ours = to_wire(&ModificationRequest::add_instance(
        ID1,
        CS1,
        Transport::Lrpc,
    ))
    .unwrap();
    assert_eq!(ours, golden("s1_add_lrpc.json"));
    let back: ModificationRequest = serde_json::from_str(&golden("s1_add_lrpc.json")).unwrap();
    assert_eq!(
        back,
        ModificationRequest::add_instance(ID1, CS1, Transport::Lrpc)
    );
}

#[test]
fn s2_add_instance_hvsocket() {
    let ours = to_wire(&ModificationRequest::add_instance(
        ID2,
        CS1,
        Transport::HvSocket,
    ))
    .unwrap();
    assert_eq!(ours, golden("s2_add_hvsocket.json"));
    let back: ModificationRequest = serde_json::from_str(&golden("s2_add_hvsocket.json")).unwrap();
    assert_eq!(
        back,
        ModificationRequest::add_instance(ID2, CS1, Transport::HvSocket)
    );
}

#[test]
fn s3_remove_instance() {
    let ours = to_wire(&ModificationRequest::remove_instance(ID1)).unwrap();
    assert_eq!(ours, golden("s3_remove.json"));
    let back: ModificationRequest = serde_json::from_str(&golden("s3_remove.json")).unwrap();
    assert_eq!(back, ModificationRequest::remove_instance(ID1));
}

#[test]
fn s4_query() {
    assert_eq!(
        to_wire(&PropertyQuery::ccg()).unwrap(),
        golden("s4_query.json")
    );
    assert_eq!(credguard::CCG_QUERY, golden("s4_query.json"));
    let back: PropertyQuery = serde_json::from_str(&golden("s4_query.json")).unwrap();
    assert_eq!(back, PropertyQuery::ccg());
}

#[test]
fn s5_service_properties() {
    let info = ContainerCredentialGuardSystemInfo {
        instances: vec![inst1(), inst2()],
    };
    let props = ServiceProperties {
        properties: vec![RawValue::from_string(to_wire(&info).unwrap()).unwrap()],
    };
    let ours = to_wire(&props).unwrap();
    let theirs = golden("s5_service_properties.json");
    assert_eq!(ours, theirs);
    same_value(&ours, &theirs);

    assert_eq!(list_instances(&theirs).unwrap(), vec![inst1(), inst2()]);
    assert_eq!(find_instance(&theirs, ID1).unwrap(), Some(inst1()));
    assert_eq!(find_instance(&theirs, ID2).unwrap(), Some(inst2()));
    assert_eq!(find_instance(&theirs, "missing").unwrap(), None);
}

#[test]
fn s6_container_document() {
    let container = Container {
        container_credential_guard: inst1().credential_guard,
        ..Default::default()
    };
    let ours = to_wire(&container).unwrap();
    assert_eq!(ours, golden("s6_container_v2.json"));
    let back: Container = serde_json::from_str(&golden("s6_container_v2.json")).unwrap();
    assert_eq!(back, container);
}

#[test]
fn s7_hvsocket_update() {
    let ours = to_wire(&ModifySettingRequest::hvsocket_update(
        "e5b1f7a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
        &service_config(),
    ))
    .unwrap();
    assert_eq!(ours, golden("s7_hvsocket_update.json"));
    let back: ModifySettingRequest =
        serde_json::from_str(&golden("s7_hvsocket_update.json")).unwrap();
    let settings: HvSocketServiceConfig = serde_json::from_value(back.settings.unwrap()).unwrap();
    assert_eq!(settings, service_config());
}

#[test]
fn html_sensitive_characters_are_escaped_like_go() {
    let spec = r#"{"PluginInput":"a<b>&c"}"#;
    let ours = to_wire(&ModificationRequest::add_instance(
        "x",
        spec,
        Transport::Lrpc,
    ))
    .unwrap();
    assert!(ours.contains(r"a\u003cb\u003e\u0026c"), "{ours}");
    let back: ModificationRequest = serde_json::from_str(&ours).unwrap();
    assert_eq!(
        back,
        ModificationRequest::add_instance("x", spec, Transport::Lrpc)
    );
}
