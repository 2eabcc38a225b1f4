//! Fault injection: what the next matching calls do instead of (or besides) their work.

use std::fmt;
use std::str::FromStr;

use credguard::hcs::HcsOperation;
use credguard::hcs::hresult::HResult;
use serde::{Deserialize, Serialize};

/// The emulated HCS calls: the subset of [`HcsOperation`] the emulator answers, named (in
/// the call log, in faults, on the command line) by the library's one list of HCS call
/// names, [`HcsOperation::api_name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Api {
    /// `HcsModifyServiceSettings`.
    ModifyServiceSettings,
    /// `HcsGetServiceProperties`.
    GetServiceProperties,
    /// `HcsModifyComputeSystem`.
    ModifyComputeSystem,
}

impl From<Api> for String {
    fn from(api: Api) -> String {
        api.name().to_owned()
    }
}

impl TryFrom<String> for Api {
    type Error = ParseApiError;
    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

impl Api {
    /// Every API, for help texts.
    pub const ALL: [Api; 3] = [
        Api::ModifyServiceSettings,
        Api::GetServiceProperties,
        Api::ModifyComputeSystem,
    ];

    /// The Win32 name ([`HcsOperation::api_name`]).
    #[must_use]
    pub fn name(self) -> &'static str {
        self.operation().api_name()
    }

    /// The library's name for this call.
    #[must_use]
    pub fn operation(self) -> HcsOperation {
        match self {
            Api::ModifyServiceSettings => HcsOperation::ModifyServiceSettings,
            Api::GetServiceProperties => HcsOperation::GetServiceProperties,
            Api::ModifyComputeSystem => HcsOperation::ModifyComputeSystem,
        }
    }

    /// The operations a fault on this API can be limited to.
    #[must_use]
    pub fn operations(self) -> &'static [&'static str] {
        match self {
            Api::ModifyServiceSettings => &["AddInstance", "RemoveInstance"],
            Api::GetServiceProperties => &[],
            Api::ModifyComputeSystem => &["Add", "Update", "Remove"],
        }
    }
}

/// As serialized: one of the names of [`Api::ALL`].
#[cfg(feature = "schemars")]
impl schemars::JsonSchema for Api {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Api".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Api::ALL.iter().map(|a| a.name()).collect();
        schemars::json_schema!({
            "description": "An HCS call the emulator answers.",
            "type": "string",
            "enum": names,
        })
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A text that names no emulated API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an emulated HCS call; use {names}",
    names = Api::ALL.map(Api::name).join(", ")
)]
pub struct ParseApiError(String);

impl FromStr for Api {
    type Err = ParseApiError;
    /// Accepts the Win32 name with or without the `Hcs` prefix, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let bare = t
            .get(..3)
            .filter(|p| p.eq_ignore_ascii_case("hcs"))
            .map_or(t, |_| &t[3..]);
        Api::ALL
            .into_iter()
            .find(|a| a.name()[3..].eq_ignore_ascii_case(bare))
            .ok_or_else(|| ParseApiError(credguard::text::ShownId::new(s).to_string()))
    }
}

/// What a fault does once its delay (if any) is over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Nothing besides the delay: the call then runs normally.
    None,
    /// Fail without applying the call, returning `result` as the result document.
    Fail {
        /// The HRESULT returned.
        #[cfg_attr(feature = "schemars", schemars(with = "String"))]
        hresult: HResult,
        /// The result document returned with it (raw text: it need not parse).
        result: Option<String>,
    },
    /// Apply the call, then report failure anyway (HCS can do this).
    ApplyThenFail {
        /// The HRESULT returned.
        #[cfg_attr(feature = "schemars", schemars(with = "String"))]
        hresult: HResult,
        /// The result document returned with it.
        result: Option<String>,
    },
    /// Apply the call and succeed, but return this text instead of the real answer
    /// (malformed, empty or doctored answers).
    Respond {
        /// The raw answer.
        text: String,
    },
}

/// A queued fault: it applies to the next `times` calls of `api` (and `operation`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Fault {
    /// The call it applies to.
    pub api: Api,
    /// The operation (`AddInstance`, `RemoveInstance` for service settings; `Add`,
    /// `Update`, `Remove` for compute-system modifications); any when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// What it does.
    pub action: FaultAction,
    /// A delay before the call runs, in milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
    /// How many calls it still applies to.
    pub times: u32,
    /// How many matching calls pass untouched before the fault applies (e.g. 1 to hit the
    /// query after AddInstance rather than the one before it).
    #[serde(default)]
    pub skip: u32,
}

impl Fault {
    /// A fault on `api` with `action`, once.
    #[must_use]
    pub fn new(api: Api, action: FaultAction) -> Self {
        Fault {
            api,
            operation: None,
            action,
            delay_ms: 0,
            times: 1,
            skip: 0,
        }
    }

    /// Fail `api` with `hresult` and no document.
    #[must_use]
    pub fn fail(api: Api, hresult: HResult) -> Self {
        Fault::new(
            api,
            FaultAction::Fail {
                hresult,
                result: None,
            },
        )
    }

    /// Limits the fault to one operation.
    #[must_use]
    pub fn on(mut self, operation: &str) -> Self {
        self.operation = Some(operation.to_owned());
        self
    }

    /// Applies the fault to `n` calls.
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.times = n;
        self
    }

    /// Lets `n` matching calls pass before the fault applies.
    #[must_use]
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }

    /// Delays the call.
    #[must_use]
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }

    pub(crate) fn matches(&self, api: Api, operation: Option<&str>) -> bool {
        self.api == api
            && self.times > 0
            && self
                .operation
                .as_deref()
                .is_none_or(|want| operation.is_some_and(|op| op.eq_ignore_ascii_case(want)))
    }
}

/// The operation a document asks for, for fault matching: `Settings.Operation` of a
/// service-settings request, `RequestType` of a compute-system modification.
pub(crate) fn operation_of(api: Api, document: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Settings {
        #[serde(rename = "Operation")]
        operation: Option<String>,
    }
    #[derive(Deserialize)]
    struct Modification {
        #[serde(rename = "Settings")]
        settings: Option<Settings>,
        #[serde(rename = "RequestType")]
        request_type: Option<String>,
    }
    let doc: Modification = serde_json::from_str(document).ok()?;
    match api {
        Api::ModifyServiceSettings => doc.settings.and_then(|s| s.operation),
        Api::ModifyComputeSystem => doc.request_type,
        Api::GetServiceProperties => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names_parse_loosely() {
        assert_eq!(
            "HcsModifyServiceSettings".parse(),
            Ok(Api::ModifyServiceSettings)
        );
        assert_eq!(
            "getserviceproperties".parse(),
            Ok(Api::GetServiceProperties)
        );
        assert_eq!(
            "hcsmodifycomputesystem".parse(),
            Ok(Api::ModifyComputeSystem)
        );
        assert!("HcsCreateComputeSystem".parse::<Api>().is_err());
    }

    #[test]
    fn faults_match_api_and_operation() {
        let f = Fault::fail(Api::ModifyServiceSettings, HResult::E_FAIL).on("AddInstance");
        assert!(f.matches(Api::ModifyServiceSettings, Some("AddInstance")));
        assert!(!f.matches(Api::ModifyServiceSettings, Some("RemoveInstance")));
        assert!(!f.matches(Api::ModifyServiceSettings, None));
        assert!(!f.matches(Api::GetServiceProperties, None));
        assert!(
            !f.clone()
                .times(0)
                .matches(Api::ModifyServiceSettings, Some("AddInstance"))
        );
        let any = Fault::fail(Api::GetServiceProperties, HResult::E_FAIL);
        assert!(any.matches(Api::GetServiceProperties, None));
    }

    #[test]
    fn operations_are_read_from_documents() {
        let add =
            r#"{"PropertyType":"ContainerCredentialGuard","Settings":{"Operation":"AddInstance"}}"#;
        assert_eq!(
            operation_of(Api::ModifyServiceSettings, add).as_deref(),
            Some("AddInstance")
        );
        let upd = r#"{"ResourcePath":"x","RequestType":"Update"}"#;
        assert_eq!(
            operation_of(Api::ModifyComputeSystem, upd).as_deref(),
            Some("Update")
        );
        assert_eq!(operation_of(Api::ModifyServiceSettings, "nope"), None);
    }
}
