//! The emulated HCS state and what each call does to it.

use std::collections::BTreeMap;

use credguard::hcs::hresult::HResult;
use credguard::redact::redact_document;
use credguard::wire::{
    CcgOperation, ContainerCredentialGuardHvSocketServiceConfig, ContainerCredentialGuardInstance,
    ContainerCredentialGuardState, ContainerCredentialGuardSystemInfo, ErrorEvent,
    HVSOCKET_SERVICE_TABLE_PATH, HvSocketServiceConfig, ModificationRequest, ModifySettingRequest,
    OperationDetails, PROPERTY_TYPE_CCG, PropertyQuery, RequestType, ResultError, Transport,
    to_wire,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::fault::{Api, Fault, FaultAction};

/// The marker of an emulator state file.
pub(crate) const FORMAT: &str = "credguard-emulator-state/1";

/// The SDDL the emulator puts in HvSocket service configs (an emulator choice).
const SDDL: &str = "D:P(A;;FA;;;SY)(A;;FA;;;BA)";

/// A utility VM: only its HvSocket service table (and whether it runs) is emulated.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Uvm {
    /// Service id -> entry.
    pub service_table: BTreeMap<String, HvSocketServiceConfig>,
    /// Stopped: modifications fail with `0xC0370110` (`HCS_E_SYSTEM_ALREADY_STOPPED`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopped: bool,
}

/// One entry of the call log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Sequence number, from 1, never reused (also not after a reset).
    pub seq: u64,
    /// The API called.
    pub api: Api,
    /// The compute system, for `HcsModifyComputeSystem`.
    pub target: Option<String>,
    /// The document as received.
    pub document: String,
    /// The HRESULT returned.
    pub hresult: HResult,
}

impl CallRecord {
    /// The record as shown to people:
    /// `{"seq":N,"api":"...","target":null,"document":{...},"hresult":"0x00000000"}`, the
    /// document as a JSON value (or a string when it is not JSON) with every `PluginInput`
    /// redacted unless `show_secrets`.
    #[must_use]
    pub fn to_json(&self, show_secrets: bool) -> serde_json::Value {
        let document = if show_secrets {
            serde_json::from_str(&self.document)
                .unwrap_or_else(|_| serde_json::Value::String(self.document.clone()))
        } else {
            redact_document(&self.document)
        };
        serde_json::json!({
            "seq": self.seq,
            "api": self.api.name(),
            "target": self.target,
            "document": document,
            "hresult": self.hresult.to_string(),
        })
    }
}

/// The whole emulated state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    pub format: String,
    pub instances: Vec<ContainerCredentialGuardInstance>,
    pub uvms: BTreeMap<String, Uvm>,
    pub faults: Vec<Fault>,
    pub next_seq: u64,
    /// How many times [`crate::Emulator::end_delays`] was called: a call waiting out a delay
    /// stops waiting once this is above what it was when the call took its fault.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub delays_ended: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for State {
    fn default() -> Self {
        State {
            format: FORMAT.to_owned(),
            instances: Vec::new(),
            uvms: BTreeMap::new(),
            faults: Vec::new(),
            next_seq: 1,
            delays_ended: 0,
        }
    }
}

/// What a call returned.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub hresult: HResult,
    pub result: Option<String>,
}

impl Outcome {
    fn ok(result: Option<String>) -> Self {
        Outcome {
            hresult: HResult::S_OK,
            result,
        }
    }

    /// A failure with a ResultError document, as HCS sends them.
    pub(crate) fn error(hresult: HResult, message: impl Into<String>) -> Self {
        let message = message.into();
        let doc = ResultError {
            error: hresult.0,
            error_message: message.clone(),
            error_events: vec![ErrorEvent {
                message,
                source: "credguard-emulator".to_owned(),
                ..Default::default()
            }],
        };
        Outcome {
            hresult,
            result: to_wire(&doc).ok(),
        }
    }
}

impl State {
    /// Takes the first queued fault matching the call, counting it down.
    pub fn take_fault(&mut self, api: Api, operation: Option<&str>) -> Option<Fault> {
        let pos = self.faults.iter().position(|f| f.matches(api, operation))?;
        let fault = &mut self.faults[pos];
        if fault.skip > 0 {
            fault.skip -= 1;
            return None;
        }
        fault.times -= 1;
        let taken = Fault {
            times: 1,
            skip: 0,
            ..fault.clone()
        };
        if fault.times == 0 {
            self.faults.remove(pos);
        }
        Some(taken)
    }

    /// Applies a call (and its fault) and returns what HCS would.
    pub fn apply(
        &mut self,
        api: Api,
        target: Option<&str>,
        document: &str,
        fault: Option<&Fault>,
    ) -> Outcome {
        let action = fault.map_or(&FaultAction::None, |f| &f.action);
        match action {
            FaultAction::Fail { hresult, result } => Outcome {
                hresult: *hresult,
                result: result.clone(),
            },
            FaultAction::ApplyThenFail { hresult, result } => {
                let _applied = self.execute(api, target, document);
                Outcome {
                    hresult: *hresult,
                    result: result.clone(),
                }
            }
            FaultAction::Respond { text } => {
                let real = self.execute(api, target, document);
                if real.hresult.is_failure() {
                    real
                } else {
                    Outcome::ok(Some(text.clone()))
                }
            }
            FaultAction::None => self.execute(api, target, document),
        }
    }

    fn execute(&mut self, api: Api, target: Option<&str>, document: &str) -> Outcome {
        match api {
            Api::ModifyServiceSettings => self.modify_service_settings(document),
            Api::GetServiceProperties => self.get_service_properties(document),
            Api::ModifyComputeSystem => self.modify_compute_system(target.unwrap_or(""), document),
        }
    }

    fn modify_service_settings(&mut self, document: &str) -> Outcome {
        let req: ModificationRequest = match serde_json::from_str(document) {
            Ok(r) => r,
            Err(e) => return invalid_json("ModificationRequest", &e),
        };
        if req.property_type != PROPERTY_TYPE_CCG {
            return invalid(format!(
                "PropertyType `{}` is not supported by the emulator; it emulates `{PROPERTY_TYPE_CCG}`",
                req.property_type
            ));
        }
        let Some(settings) = req.settings else {
            return invalid("the ModificationRequest has no Settings");
        };
        match (settings.operation, settings.operation_details) {
            (CcgOperation::AddInstance, Some(OperationDetails::AddInstance(add))) => {
                if add.id.is_empty() {
                    return invalid("AddInstance: OperationDetails.Id is empty");
                }
                if add.credential_spec.is_empty() {
                    return invalid("AddInstance: OperationDetails.CredentialSpec is empty");
                }
                if !matches!(
                    serde_json::from_str::<serde_json::Value>(&add.credential_spec),
                    Ok(serde_json::Value::Object(_))
                ) {
                    return invalid(
                        "AddInstance: OperationDetails.CredentialSpec is not a JSON object",
                    );
                }
                if !matches!(add.transport, Transport::Lrpc | Transport::HvSocket) {
                    return invalid(format!(
                        "AddInstance: Transport `{}` is not LRPC or HvSocket",
                        add.transport
                    ));
                }
                if self.instances.iter().any(|i| i.id == add.id) {
                    return Outcome::error(
                        HResult::ERROR_ALREADY_EXISTS,
                        format!(
                            "a Container Credential Guard instance already exists for `{}`",
                            add.id
                        ),
                    );
                }
                let hv_socket_config = (add.transport == Transport::HvSocket).then(|| {
                    ContainerCredentialGuardHvSocketServiceConfig {
                        service_id: uuid::Uuid::new_v4().to_string(),
                        service_config: Some(HvSocketServiceConfig {
                            bind_security_descriptor: SDDL.to_owned(),
                            connect_security_descriptor: SDDL.to_owned(),
                            allow_wildcard_binds: true,
                            disabled: false,
                        }),
                    }
                });
                self.instances.push(ContainerCredentialGuardInstance {
                    id: add.id,
                    credential_guard: Some(ContainerCredentialGuardState {
                        cookie: format!("01000000{}", &random_hex()[..40]),
                        rpc_endpoint: format!("CcgRpc_{}", &random_hex()[..16]),
                        transport: add.transport,
                        credential_spec: add.credential_spec,
                    }),
                    hv_socket_config,
                });
                Outcome::ok(None)
            }
            (CcgOperation::RemoveInstance, Some(OperationDetails::RemoveInstance(rm))) => {
                if rm.id.is_empty() {
                    return invalid("RemoveInstance: OperationDetails.Id is empty");
                }
                match self.instances.iter().position(|i| i.id == rm.id) {
                    Some(pos) => {
                        self.instances.remove(pos);
                        Outcome::ok(None)
                    }
                    None => Outcome::error(
                        HResult::ERROR_NOT_FOUND,
                        format!(
                            "no Container Credential Guard instance exists for `{}`",
                            rm.id
                        ),
                    ),
                }
            }
            (CcgOperation::AddInstance | CcgOperation::RemoveInstance, _) => {
                invalid("the request has no OperationDetails")
            }
            (op, _) => invalid(format!(
                "Operation `{op}` is not AddInstance or RemoveInstance"
            )),
        }
    }

    fn get_service_properties(&self, document: &str) -> Outcome {
        let query: PropertyQuery = match serde_json::from_str(document) {
            Ok(q) => q,
            Err(e) => return invalid_json("PropertyQuery", &e),
        };
        if query.property_types.is_empty() {
            return invalid("the PropertyQuery names no PropertyTypes");
        }
        let mut properties: Vec<Box<RawValue>> = Vec::new();
        for ty in &query.property_types {
            if ty != PROPERTY_TYPE_CCG {
                return invalid(format!(
                    "property type `{ty}` is not supported by the emulator; it answers `{PROPERTY_TYPE_CCG}`"
                ));
            }
            let info = ContainerCredentialGuardSystemInfo {
                instances: self.instances.clone(),
            };
            let text = to_wire(&info).unwrap_or_default();
            match RawValue::from_string(text) {
                Ok(raw) => properties.push(raw),
                Err(e) => return Outcome::error(HResult::E_UNEXPECTED, e.to_string()),
            }
        }
        let answer = credguard::wire::ServiceProperties { properties };
        Outcome::ok(to_wire(&answer).ok())
    }

    fn modify_compute_system(&mut self, target: &str, document: &str) -> Outcome {
        let Some(uvm) = self.uvms.get_mut(target) else {
            return Outcome::error(
                HResult::HCS_E_SYSTEM_NOT_FOUND_NT,
                format!(
                    "A virtual machine or container with the specified identifier does not exist: `{target}`"
                ),
            );
        };
        if uvm.stopped {
            return Outcome::error(
                HResult(0xC037_0110_u32 as i32),
                format!(
                    "The virtual machine or container with the specified identifier is not running: `{target}` is stopped"
                ),
            );
        }
        let req: ModifySettingRequest = match serde_json::from_str(document) {
            Ok(r) => r,
            Err(e) => return invalid_json("ModifySettingRequest", &e),
        };
        let Some(service_id) = req
            .resource_path
            .strip_prefix(HVSOCKET_SERVICE_TABLE_PATH)
            .filter(|s| !s.is_empty() && !s.contains('/'))
        else {
            return invalid(format!(
                "ResourcePath `{}` is not supported by the emulator; it emulates `{HVSOCKET_SERVICE_TABLE_PATH}<ServiceId>`",
                req.resource_path
            ));
        };
        match req.request_type {
            Some(rt @ (RequestType::Update | RequestType::Add)) => {
                let Some(settings) = req.settings else {
                    return invalid("the ModifySettingRequest has no Settings");
                };
                let config: HvSocketServiceConfig = match serde_json::from_value(settings) {
                    Ok(c) => c,
                    Err(_) => return invalid("Settings is not an HvSocketServiceConfig"),
                };
                if rt == RequestType::Add && uvm.service_table.contains_key(service_id) {
                    return Outcome::error(
                        HResult::ERROR_ALREADY_EXISTS,
                        format!("the HvSocket service table already has `{service_id}`"),
                    );
                }
                uvm.service_table.insert(service_id.to_owned(), config);
                Outcome::ok(None)
            }
            Some(RequestType::Remove) => match uvm.service_table.remove(service_id) {
                Some(_) => Outcome::ok(None),
                None => Outcome::error(
                    HResult::ERROR_NOT_FOUND,
                    format!("the HvSocket service table has no `{service_id}`"),
                ),
            },
            Some(RequestType::Other(t)) => {
                invalid(format!("RequestType `{t}` is not Add, Update or Remove"))
            }
            None => invalid("the ModifySettingRequest has no RequestType"),
        }
    }
}

fn invalid(message: impl Into<String>) -> Outcome {
    Outcome::error(HResult::E_INVALIDARG, message)
}

fn invalid_json(what: &str, e: &serde_json::Error) -> Outcome {
    // Shape errors can quote values from the document (a secret, say): only the position
    // is reported for those.
    let message = if e.is_syntax() || e.is_eof() {
        format!("the {what} is not valid JSON: {e}")
    } else {
        format!(
            "the {what} does not have the expected shape (a field has the wrong type near line {} column {})",
            e.line(),
            e.column()
        )
    };
    let hresult = if e.is_syntax() || e.is_eof() {
        HResult::HCS_E_INVALID_JSON
    } else {
        HResult::E_INVALIDARG
    };
    Outcome::error(hresult, message)
}

fn random_hex() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    a + &b
}
