//! The HCS wire documents of the Container Credential Guard flow.
//!
//! Every type here mirrors a document HCS reads or writes, with the field names exactly as
//! HCS spells them. Writing follows hcsshim's Go structs (`omitempty`: empty strings, `false`,
//! empty lists and absent objects are left out; fields in Go's order); [`to_wire`] also
//! escapes `<`, `>`, `&`, U+2028 and U+2029 the way Go's `encoding/json` does, so a document
//! is byte-for-byte what hcsshim would send. Reading is tolerant in the three ways hcsshim's
//! client is: unknown fields are ignored, missing fields and `null` read as empty.
//!
//! Types that carry a credential spec redact it in their `Debug` output: a spec can hold a
//! plug-in secret and must never reach a log by accident.

pub mod container;
mod find;
mod go_json;

use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

#[cfg(fuzzing)]
#[doc(hidden)]
pub use find::find_instance_reference;
pub use find::{
    FindError, find_instance, find_listed_instance, list_instances, list_listed_instances,
};
pub use go_json::to_wire;

/// The query for every CCG instance on the host, as hcsshim writes it.
pub const CCG_QUERY: &str = r#"{"PropertyTypes":["ContainerCredentialGuard"]}"#;

/// How the container is isolated, which decides the transport of its instance: the one
/// definition, used by the lifecycle, recorded by the journal (`"process"`, `"hyperv"`),
/// shown (`process`, `hyperv`) and, with the `clap` feature, taken from a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub enum Isolation {
    /// Process isolation (Argon): transport LRPC.
    #[default]
    Process,
    /// Hyper-V isolation (Xenon): transport HvSocket.
    #[cfg_attr(feature = "clap", value(name = "hyperv"))]
    HyperV,
}

impl fmt::Display for Isolation {
    /// `process` or `hyperv`, as the command line and the journal write it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isolation::Process => "process",
            Isolation::HyperV => "hyperv",
        })
    }
}

impl Isolation {
    /// The transport HCS is asked for.
    #[must_use]
    pub fn transport(self) -> Transport {
        match self {
            Isolation::Process => Transport::Lrpc,
            Isolation::HyperV => Transport::HvSocket,
        }
    }
}

/// The property type of CCG requests and queries.
pub const PROPERTY_TYPE_CCG: &str = "ContainerCredentialGuard";

/// `ResourcePath` of an HvSocket service-table entry in a utility VM, without the service id.
pub const HVSOCKET_SERVICE_TABLE_PATH: &str =
    "VirtualMachine/Devices/HvSocket/HvSocketConfig/ServiceTable/";

/// Reads `null` as the type's default (Go's zero value), as hcsshim's client does.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference.
fn is_false(b: &bool) -> bool {
    !*b
}

/// Debug text of a credential spec: its size, never its content.
struct RedactedSpec<'a>(&'a str);

impl fmt::Debug for RedactedSpec<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            write!(f, "<redacted credential spec, {} bytes>", self.0.len())
        }
    }
}

/// The transport a CCG instance uses to reach its container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `"LRPC"`: process isolation (Argon).
    Lrpc,
    /// `"HvSocket"`: Hyper-V isolation (Xenon).
    HvSocket,
    /// A value this version does not know, kept as HCS sent it.
    Other(String),
}

impl Transport {
    /// The wire spelling.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Transport::Lrpc => "LRPC",
            Transport::HvSocket => "HvSocket",
            Transport::Other(s) => s,
        }
    }

    fn from_wire(s: String) -> Self {
        match s.as_str() {
            "LRPC" => Transport::Lrpc,
            "HvSocket" => Transport::HvSocket,
            _ => Transport::Other(s),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Transport::Other(s) if s.is_empty())
    }
}

impl Default for Transport {
    /// Absent (Go's zero value, an empty string), so a missing field stays missing.
    fn default() -> Self {
        Transport::Other(String::new())
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Transport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Transport {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Transport::from_wire(null_default::<D, String>(d)?))
    }
}

/// `ModificationRequest`: the document of `HcsModifyServiceSettings`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ModificationRequest {
    /// `"ContainerCredentialGuard"` for this flow.
    #[serde(rename = "PropertyType", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub property_type: String,
    /// The CCG operation.
    #[serde(rename = "Settings", default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<ContainerCredentialGuardOperationRequest>,
}

impl ModificationRequest {
    /// The AddInstance request for a container.
    #[must_use]
    pub fn add_instance(id: &str, credential_spec: &str, transport: Transport) -> Self {
        Self::ccg(ContainerCredentialGuardOperationRequest {
            operation: CcgOperation::AddInstance,
            operation_details: Some(OperationDetails::AddInstance(
                ContainerCredentialGuardAddInstanceRequest {
                    id: id.to_owned(),
                    credential_spec: credential_spec.to_owned(),
                    transport,
                },
            )),
        })
    }

    /// The RemoveInstance request for a container.
    #[must_use]
    pub fn remove_instance(id: &str) -> Self {
        Self::ccg(ContainerCredentialGuardOperationRequest {
            operation: CcgOperation::RemoveInstance,
            operation_details: Some(OperationDetails::RemoveInstance(
                ContainerCredentialGuardRemoveInstanceRequest { id: id.to_owned() },
            )),
        })
    }

    fn ccg(settings: ContainerCredentialGuardOperationRequest) -> Self {
        ModificationRequest {
            property_type: PROPERTY_TYPE_CCG.to_owned(),
            settings: Some(settings),
        }
    }
}

/// The CCG operations of `ContainerCredentialGuardOperationRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum CcgOperation {
    /// `"AddInstance"`.
    AddInstance,
    /// `"RemoveInstance"`.
    RemoveInstance,
    /// Anything else, kept as sent (an empty text means the field was absent).
    #[default]
    Unknown,
    /// A value this version does not know.
    Other(String),
}

impl CcgOperation {
    /// The wire spelling.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            CcgOperation::AddInstance => "AddInstance",
            CcgOperation::RemoveInstance => "RemoveInstance",
            CcgOperation::Unknown => "",
            CcgOperation::Other(s) => s,
        }
    }
}

impl fmt::Display for CcgOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The details of a CCG operation, by operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationDetails {
    /// Details of `AddInstance`.
    AddInstance(ContainerCredentialGuardAddInstanceRequest),
    /// Details of `RemoveInstance`.
    RemoveInstance(ContainerCredentialGuardRemoveInstanceRequest),
    /// Details of an operation this version does not know, kept as a JSON value.
    Other(serde_json::Value),
}

/// `ContainerCredentialGuardOperationRequest`: the `Settings` of a CCG modification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerCredentialGuardOperationRequest {
    /// `Operation`.
    pub operation: CcgOperation,
    /// `OperationDetails`.
    pub operation_details: Option<OperationDetails>,
}

impl Serialize for ContainerCredentialGuardOperationRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let op = self.operation.as_str();
        let n = usize::from(!op.is_empty()) + usize::from(self.operation_details.is_some());
        let mut m = s.serialize_map(Some(n))?;
        if !op.is_empty() {
            m.serialize_entry("Operation", op)?;
        }
        match &self.operation_details {
            Some(OperationDetails::AddInstance(d)) => m.serialize_entry("OperationDetails", d)?,
            Some(OperationDetails::RemoveInstance(d)) => {
                m.serialize_entry("OperationDetails", d)?;
            }
            Some(OperationDetails::Other(v)) => m.serialize_entry("OperationDetails", v)?,
            None => {}
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for ContainerCredentialGuardOperationRequest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(rename = "Operation", default, deserialize_with = "null_default")]
            operation: String,
            #[serde(rename = "OperationDetails", default)]
            details: Option<serde_json::Value>,
        }
        let raw = Raw::deserialize(d)?;
        let operation = match raw.operation.as_str() {
            "AddInstance" => CcgOperation::AddInstance,
            "RemoveInstance" => CcgOperation::RemoveInstance,
            "" => CcgOperation::Unknown,
            _ => CcgOperation::Other(raw.operation),
        };
        let operation_details = match raw.details {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(match operation {
                CcgOperation::AddInstance => OperationDetails::AddInstance(
                    serde_json::from_value(v).map_err(de::Error::custom)?,
                ),
                CcgOperation::RemoveInstance => OperationDetails::RemoveInstance(
                    serde_json::from_value(v).map_err(de::Error::custom)?,
                ),
                _ => OperationDetails::Other(v),
            }),
        };
        Ok(Self {
            operation,
            operation_details,
        })
    }
}

/// `ContainerCredentialGuardAddInstanceRequest`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerCredentialGuardAddInstanceRequest {
    /// The container id the instance belongs to.
    #[serde(rename = "Id", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The credential spec, as JSON text.
    #[serde(rename = "CredentialSpec", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub credential_spec: String,
    /// `LRPC` or `HvSocket`.
    #[serde(
        rename = "Transport",
        default,
        skip_serializing_if = "Transport::is_empty"
    )]
    pub transport: Transport,
}

impl fmt::Debug for ContainerCredentialGuardAddInstanceRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContainerCredentialGuardAddInstanceRequest")
            .field("id", &self.id)
            .field("credential_spec", &RedactedSpec(&self.credential_spec))
            .field("transport", &self.transport)
            .finish()
    }
}

/// `ContainerCredentialGuardRemoveInstanceRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerCredentialGuardRemoveInstanceRequest {
    /// The container id whose instance is removed.
    #[serde(rename = "Id", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
}

/// `PropertyQuery`: the document of `HcsGetServiceProperties`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PropertyQuery {
    /// The property types asked for.
    #[serde(rename = "PropertyTypes", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub property_types: Vec<String>,
    /// Schema 2.5+ per-type queries; not used by this flow, kept when present.
    #[serde(rename = "Queries", default, skip_serializing_if = "Option::is_none")]
    pub queries: Option<serde_json::Map<String, serde_json::Value>>,
}

impl PropertyQuery {
    /// The query for all CCG instances on the host.
    #[must_use]
    pub fn ccg() -> Self {
        PropertyQuery {
            property_types: vec![PROPERTY_TYPE_CCG.to_owned()],
            queries: None,
        }
    }
}

/// `ServiceProperties`: the answer of `HcsGetServiceProperties`, one raw element per
/// property type asked for.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ServiceProperties {
    /// One document per requested property type.
    #[serde(rename = "Properties", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Box<RawValue>>,
}

/// `ContainerCredentialGuardSystemInfo`: every CCG instance on the host.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerCredentialGuardSystemInfo {
    /// The instances.
    #[serde(rename = "Instances", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<ContainerCredentialGuardInstance>,
}

/// `ContainerCredentialGuardInstance`: one instance as HCS lists it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerCredentialGuardInstance {
    /// The container id.
    #[serde(rename = "Id", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The state that goes into the V2 container document.
    #[serde(
        rename = "CredentialGuard",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub credential_guard: Option<ContainerCredentialGuardState>,
    /// The HvSocket service-table entry (Hyper-V isolation only).
    #[serde(
        rename = "HvSocketConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub hv_socket_config: Option<ContainerCredentialGuardHvSocketServiceConfig>,
}

/// `ContainerCredentialGuardState`: what the container document needs.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerCredentialGuardState {
    /// The instance's authentication cookie (hex).
    #[serde(rename = "Cookie", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cookie: String,
    /// The RPC endpoint name ccg.exe listens on.
    #[serde(rename = "RpcEndpoint", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub rpc_endpoint: String,
    /// `LRPC` or `HvSocket`.
    #[serde(
        rename = "Transport",
        default,
        skip_serializing_if = "Transport::is_empty"
    )]
    pub transport: Transport,
    /// The credential spec, as JSON text.
    #[serde(rename = "CredentialSpec", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub credential_spec: String,
}

impl fmt::Debug for ContainerCredentialGuardState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContainerCredentialGuardState")
            .field("cookie", &self.cookie)
            .field("rpc_endpoint", &self.rpc_endpoint)
            .field("transport", &self.transport)
            .field("credential_spec", &RedactedSpec(&self.credential_spec))
            .finish()
    }
}

/// `ContainerCredentialGuardHvSocketServiceConfig`: an instance's HvSocket service entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContainerCredentialGuardHvSocketServiceConfig {
    /// The HvSocket service id (a GUID).
    #[serde(rename = "ServiceId", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub service_id: String,
    /// The service-table entry for the utility VM.
    #[serde(
        rename = "ServiceConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub service_config: Option<HvSocketServiceConfig>,
}

/// `HvSocketServiceConfig`: one entry of a utility VM's HvSocket service table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HvSocketServiceConfig {
    /// SDDL of who may bind.
    #[serde(
        rename = "BindSecurityDescriptor",
        default,
        deserialize_with = "null_default"
    )]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub bind_security_descriptor: String,
    /// SDDL of who may connect.
    #[serde(
        rename = "ConnectSecurityDescriptor",
        default,
        deserialize_with = "null_default"
    )]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub connect_security_descriptor: String,
    /// Whether wildcard binds are allowed.
    #[serde(
        rename = "AllowWildcardBinds",
        default,
        deserialize_with = "null_default"
    )]
    #[serde(skip_serializing_if = "is_false")]
    pub allow_wildcard_binds: bool,
    /// Whether the entry is disabled.
    #[serde(rename = "Disabled", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "is_false")]
    pub disabled: bool,
}

/// The V2 `Container` document, as far as this project fills it: the CCG state, plus every
/// other field kept as given so a runtime's document passes through unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Container {
    /// Every field of the document other than `ContainerCredentialGuard`, in order.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
    /// `ContainerCredentialGuard`: the instance's state.
    #[serde(
        rename = "ContainerCredentialGuard",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub container_credential_guard: Option<ContainerCredentialGuardState>,
}

/// `RequestType` of a `ModifySettingRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestType {
    /// `"Add"`.
    Add,
    /// `"Remove"`.
    Remove,
    /// `"Update"`: create or update.
    Update,
    /// A value this version does not know.
    Other(String),
}

impl RequestType {
    /// The wire spelling.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            RequestType::Add => "Add",
            RequestType::Remove => "Remove",
            RequestType::Update => "Update",
            RequestType::Other(s) => s,
        }
    }
}

impl Serialize for RequestType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RequestType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: String = null_default(d)?;
        Ok(match s.as_str() {
            "Add" => RequestType::Add,
            "Remove" => RequestType::Remove,
            "Update" => RequestType::Update,
            _ => RequestType::Other(s),
        })
    }
}

/// `ModifySettingRequest`: the document of `HcsModifyComputeSystem`, used here to add and
/// remove an HvSocket service-table entry in a utility VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModifySettingRequest {
    /// What is modified, e.g. `VirtualMachine/Devices/HvSocket/HvSocketConfig/ServiceTable/<id>`.
    #[serde(rename = "ResourcePath", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resource_path: String,
    /// `Add`, `Remove` or `Update`.
    #[serde(
        rename = "RequestType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub request_type: Option<RequestType>,
    /// The settings (for the HvSocket entry: an [`HvSocketServiceConfig`]).
    #[serde(rename = "Settings", default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
    /// A request forwarded to the guest; not used by this flow.
    #[serde(
        rename = "GuestRequest",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub guest_request: Option<serde_json::Value>,
}

impl ModifySettingRequest {
    /// The hot-add (`Update`) of an HvSocket service-table entry.
    #[must_use]
    pub fn hvsocket_update(service_id: &str, config: &HvSocketServiceConfig) -> Self {
        ModifySettingRequest {
            resource_path: format!("{HVSOCKET_SERVICE_TABLE_PATH}{service_id}"),
            request_type: Some(RequestType::Update),
            // Serialising a plain struct of strings and booleans into a Value cannot fail.
            settings: serde_json::to_value(config).ok(),
            guest_request: None,
        }
    }

    /// The removal of an HvSocket service-table entry.
    #[must_use]
    pub fn hvsocket_remove(service_id: &str) -> Self {
        ModifySettingRequest {
            resource_path: format!("{HVSOCKET_SERVICE_TABLE_PATH}{service_id}"),
            request_type: Some(RequestType::Remove),
            settings: None,
            guest_request: None,
        }
    }
}

/// One event of a [`ResultError`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// What happened.
    #[serde(rename = "Message", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Where.
    #[serde(rename = "StackTrace", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stack_trace: String,
    /// The ETW provider GUID.
    #[serde(rename = "Provider", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub provider: String,
    /// The event id.
    #[serde(rename = "EventId", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "is_zero_u16")]
    pub event_id: u16,
    /// Event flags.
    #[serde(rename = "Flags", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub flags: u32,
    /// The component that raised it.
    #[serde(rename = "Source", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero_u16(v: &u16) -> bool {
    *v == 0
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

/// The ResultError document HCS may return with a failure.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResultError {
    /// The HRESULT, as a signed 32-bit number.
    #[serde(rename = "Error", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "is_zero_i32")]
    pub error: i32,
    /// A summary.
    #[serde(rename = "ErrorMessage", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error_message: String,
    /// The events that led to it.
    #[serde(rename = "ErrorEvents", default, deserialize_with = "null_default")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_events: Vec<ErrorEvent>,
}

impl ResultError {
    /// Parses a ResultError document; `None` when the text is not one.
    ///
    /// A text that is valid JSON but not an object (say `"oops"` or `[]`) is not a
    /// ResultError either.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let trimmed = text.trim_start_matches('\u{feff}').trim();
        if !trimmed.starts_with('{') {
            return None;
        }
        serde_json::from_str(trimmed).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_credential_spec() {
        let req = ModificationRequest::add_instance(
            "c1",
            r#"{"PluginInput":"hunter2"}"#,
            Transport::Lrpc,
        );
        let text = format!("{req:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("redacted"), "{text}");
        let state = ContainerCredentialGuardState {
            credential_spec: "hunter2".into(),
            ..Default::default()
        };
        assert!(!format!("{state:?}").contains("hunter2"));
    }

    #[test]
    fn null_and_missing_fields_read_as_empty() {
        let inst: ContainerCredentialGuardInstance = serde_json::from_str(
            r#"{"Id":null,"CredentialGuard":{"Cookie":null,"Transport":null},"HvSocketConfig":null,"Future":1}"#,
        )
        .unwrap();
        assert_eq!(inst.id, "");
        let cg = inst.credential_guard.unwrap();
        assert_eq!(cg.cookie, "");
        assert!(cg.transport.is_empty());
        assert!(inst.hv_socket_config.is_none());
    }

    #[test]
    fn empty_fields_are_omitted() {
        let v = serde_json::to_string(&ContainerCredentialGuardInstance::default()).unwrap();
        assert_eq!(v, "{}");
        let v = serde_json::to_string(&HvSocketServiceConfig::default()).unwrap();
        assert_eq!(v, "{}");
        let v = serde_json::to_string(&ResultError::default()).unwrap();
        assert_eq!(v, "{}");
    }

    #[test]
    fn result_error_parse_is_tolerant_but_not_gullible() {
        let r = ResultError::parse(
            r#"{"Error":-2143354597,"ErrorMessage":"denied","ErrorEvents":null,"X":1}"#,
        )
        .unwrap();
        assert_eq!(r.error, -2_143_354_597);
        assert!(ResultError::parse("not json").is_none());
        assert!(ResultError::parse("\"text\"").is_none());
        assert!(ResultError::parse("").is_none());
    }

    #[test]
    fn unknown_operation_details_are_kept() {
        let r: ModificationRequest = serde_json::from_str(
            r#"{"PropertyType":"ContainerCredentialGuard","Settings":{"Operation":"Frobnicate","OperationDetails":{"A":1}}}"#,
        )
        .unwrap();
        let s = r.settings.unwrap();
        assert_eq!(s.operation, CcgOperation::Other("Frobnicate".into()));
        assert!(matches!(
            s.operation_details,
            Some(OperationDetails::Other(_))
        ));
    }

    #[test]
    fn isolation_is_written_the_same_everywhere() {
        for (isolation, name, transport) in [
            (Isolation::Process, "process", Transport::Lrpc),
            (Isolation::HyperV, "hyperv", Transport::HvSocket),
        ] {
            assert_eq!(isolation.to_string(), name);
            let json = serde_json::to_string(&isolation).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Isolation>(&json).unwrap(), isolation);
            assert_eq!(isolation.transport(), transport);
        }
    }
}
