//! What a create would do, without doing it: [`CcgClient::plan`].
//!
//! A plan makes every check the create makes (the request's and the client's policy: a
//! denied spec is refused with the same error) and lists the HCS calls the create sends, in
//! order, with their documents byte for byte as the create builds them, from the same
//! functions. A plan sends nothing to HCS, not even the read-only query of the
//! existing-instance check, and reads no journal: it is the same whatever HCS and the
//! journal hold, works where HCS cannot be reached, and cannot race a create. What the
//! create decides from HCS's answers (an id that already has an instance is refused; a
//! journal record an earlier life left is cleaned up first) is therefore listed as what the
//! create will check, not decided.

use serde::Serialize;

use crate::hcs::HcsOperation;
use crate::lifecycle::{
    CcgClient, CcgError, CreateRequest, SpecRequest, add_instance_document, hvsocket_add_document,
};
use crate::wire::{CCG_QUERY, HvSocketServiceConfig};

/// The ServiceId in a planned hot-add of the HvSocket entry: the real one is chosen by HCS
/// and read from its answer to the query after AddInstance (`HvSocketConfig.ServiceId`).
/// The document's `Settings` are likewise a placeholder (an empty service config) for the
/// instance's `HvSocketConfig.ServiceConfig`.
pub const PLACEHOLDER_SERVICE_ID: &str = "<ServiceId>";

/// What [`CcgClient::plan`] found a create would do: the HCS calls in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// The container id the instance would belong to.
    pub container_id: String,
    /// The calls, in the order the create sends them.
    pub calls: Vec<PlannedCall>,
}

/// One HCS call of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PlannedCall {
    /// The HCS function (serialised as its Win32 name, `HcsModifyServiceSettings`).
    #[serde(rename = "api", serialize_with = "api_name")]
    pub operation: HcsOperation,
    /// The compute system the call is made on (the utility VM of a hot-add), if any.
    pub target: Option<String>,
    /// What the call is for, in a few words.
    pub purpose: &'static str,
    /// The document sent, exactly as the create sends it (serialised as JSON, not as a
    /// string). It holds the credential spec: redact it before showing it.
    #[serde(serialize_with = "embedded_json")]
    pub document: String,
    /// The parts of the document that only HCS's earlier answer holds, shown as
    /// placeholders (see [`PLACEHOLDER_SERVICE_ID`]); empty when the document is final.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_answer: Vec<&'static str>,
}

impl Plan {
    /// The calls that change something on the host (all but the queries).
    pub fn modifying_calls(&self) -> impl Iterator<Item = &PlannedCall> {
        self.calls
            .iter()
            .filter(|c| c.operation != HcsOperation::GetServiceProperties)
    }
}

fn api_name<S: serde::Serializer>(op: &HcsOperation, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(op.api_name())
}

fn embedded_json<S: serde::Serializer>(doc: &str, s: S) -> Result<S::Ok, S::Error> {
    match serde_json::from_str::<serde_json::Value>(doc) {
        Ok(v) => v.serialize(s),
        Err(_) => s.serialize_str(doc),
    }
}

impl CreateRequest<'_> {
    /// What a create of this request would do, by a client without a policy of its own
    /// ([`CcgClient::plan`] adds the client's): needs no client and no backend, so a dry run
    /// works where HCS cannot be reached.
    ///
    /// # Errors
    /// As [`CreateRequest::check`].
    pub fn plan(&self) -> Result<Plan, CcgError> {
        self.check()?;
        let query = |purpose| PlannedCall {
            operation: HcsOperation::GetServiceProperties,
            target: None,
            purpose,
            document: CCG_QUERY.to_owned(),
            from_answer: Vec::new(),
        };
        let mut calls = vec![
            query("refuse an id that already has an instance"),
            PlannedCall {
                operation: HcsOperation::ModifyServiceSettings,
                target: None,
                purpose: "AddInstance",
                document: add_instance_document(self),
                from_answer: Vec::new(),
            },
            query("read the new instance"),
        ];
        if let Some(vm) = self.utility_vm {
            calls.push(PlannedCall {
                operation: HcsOperation::ModifyComputeSystem,
                target: Some(vm.to_owned()),
                purpose: "hot-add the HvSocket service-table entry (Settings: the instance's ServiceConfig)",
                document: hvsocket_add_document(
                    PLACEHOLDER_SERVICE_ID,
                    &HvSocketServiceConfig::default(),
                ),
                from_answer: vec!["HvSocketConfig.ServiceId", "HvSocketConfig.ServiceConfig"],
            });
        }
        Ok(Plan {
            container_id: self.container_id.to_owned(),
            calls,
        })
    }
}

impl SpecRequest<'_> {
    /// [`CreateRequest::plan`] for a loaded credential spec: a spec whose source disables
    /// gMSA is refused as create refuses it; the canonical form is what the plan shows.
    ///
    /// # Errors
    /// As [`SpecRequest::check`].
    pub fn plan(&self) -> Result<Plan, CcgError> {
        self.check()?;
        let text = self.spec.document.canonical();
        self.with_text(&text).plan()
    }
}

impl CcgClient {
    /// What [`CcgClient::create_request`] would do with `req`, without sending anything:
    /// every check it makes first (the same errors), then its HCS calls in order with
    /// their documents as it would send them. See the module docs of what a plan does not
    /// decide (it sends no query, so an id that already has an instance is not refused).
    ///
    /// # Errors
    /// What create refuses before anything is sent: [`CreateRequest::check`], then
    /// [`CcgError::Denied`] when the client's policy disables gMSA.
    pub fn plan(&self, req: &CreateRequest<'_>) -> Result<Plan, CcgError> {
        req.check()?;
        self.check_policy(req.container_id)?;
        req.plan()
    }

    /// [`CcgClient::plan`] for a loaded credential spec, as
    /// [`CcgClient::create_spec_request`] would create it: a spec whose source disables
    /// gMSA is refused as create refuses it.
    ///
    /// # Errors
    /// As [`CcgClient::check_request`].
    pub fn plan_spec(&self, req: &SpecRequest<'_>) -> Result<Plan, CcgError> {
        self.check_request(req)?;
        req.plan()
    }
}
