//! The JSON documents the commands print under `--output json`: one type per command, from
//! which the JSON Schemas under `docs/schema/` are generated ([`schemas`]).
//!
//! Conventions: credguard's own fields are snake_case; a document HCS sent (an instance as
//! HCS lists it, a wire document of a dry run or of the emulator's call log, a utility VM's
//! HvSocket service-table entry) and a credential spec are embedded unchanged (PascalCase,
//! as HCS and New-CredentialSpec write them) under a named field, with every `PluginInput`
//! redacted unless `--show-secrets`. A command that fails before it has a result prints
//! [`ErrorDoc`] instead.

use std::collections::BTreeMap;

use credguard::credspec::{Diagnostic, Encoding, SpecForm};
use credguard::journal::RecordState;
use credguard::lifecycle::reconcile::{Action, PlanItem};
use credguard_emulator::{Api, Fault};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Serialize;
use serde_json::Value;

/// The schema of a document HCS sent (or would be sent), embedded unchanged.
fn hcs_document(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "An HCS document as HCS sends or receives it (PascalCase field names), PluginInput redacted unless --show-secrets."
    })
}

/// [`hcs_document`], or `null` when there is none.
fn hcs_document_or_null(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["object", "null"],
        "description": "An HCS document as HCS sends it (PascalCase field names), PluginInput redacted unless --show-secrets; null when there is none."
    })
}

/// The schema of a credential spec, embedded unchanged.
fn credential_spec(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "A credential spec (PascalCase field names, as New-CredentialSpec writes them), PluginInput redacted unless --show-secrets."
    })
}

/// What every command prints on standard output when it fails before it has a result.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDoc {
    /// The error.
    pub error: ErrorBody,
}

/// The error of an [`ErrorDoc`].
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The error, as the `error:` line on standard error says it.
    pub message: String,
    /// Its causes, outermost first (the `caused by:` lines).
    pub chain: Vec<String>,
    /// The exit code the command ends with.
    pub exit_code: u8,
}

/// `instances add` (without `--dry-run`) and `instances show`: one instance.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceDoc {
    /// The container id.
    pub container_id: String,
    /// The instance as HCS lists it.
    #[schemars(schema_with = "hcs_document")]
    pub instance: Value,
}

/// `instances add --dry-run`: what would be sent, in order; nothing was.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunDoc {
    /// Always `true`.
    pub dry_run: bool,
    /// The container id.
    pub container_id: String,
    /// The calls that would be made, in order.
    pub calls: Vec<PlannedCall>,
}

/// One call of a [`DryRunDoc`].
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedCall {
    /// The HCS function.
    pub api: String,
    /// The compute system it acts on (`HcsModifyComputeSystem`), if any.
    pub target: Option<String>,
    /// Why it is made.
    pub purpose: String,
    /// The document it would send.
    #[schemars(schema_with = "hcs_document")]
    pub document: Value,
    /// The parts of the document only HCS's earlier answer holds, shown as placeholders;
    /// absent when the document is final.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub from_answer: Vec<String>,
}

/// `instances add`: an instance, or with `--dry-run` the plan.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum AddDoc {
    /// The instance created.
    Created(InstanceDoc),
    /// `--dry-run`: what would be sent.
    DryRun(DryRunDoc),
}

/// The HvSocket entry an error left in its utility VM (kept by the journal for
/// `reconcile`).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryLeft {
    /// The utility VM.
    pub utility_vm: String,
    /// The entry's ServiceId.
    pub service_id: String,
}

impl EntryLeft {
    /// The entry `e` says is still in its utility VM, if any.
    pub fn of(e: &credguard::CcgError) -> Option<Self> {
        e.entry_left().map(|(vm, sid)| EntryLeft {
            utility_vm: vm.to_string(),
            service_id: sid.to_string(),
        })
    }
}

/// One row of `instances list`: an instance HCS lists, or a journal record whose instance
/// is gone.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRow {
    /// The container id.
    pub container_id: String,
    /// Whether HCS lists an instance for it.
    pub listed: bool,
    /// Whether the journal owns it.
    pub owned: bool,
    /// The journal record's state, if any.
    pub state: Option<RecordState>,
    /// How old the journal record is, in milliseconds.
    pub age_ms: Option<u64>,
    /// The utility VM of its HvSocket entry, if the journal knows one.
    pub utility_vm: Option<String>,
    /// The ServiceId of its HvSocket entry, if the journal knows one.
    pub service_id: Option<String>,
    /// What `reconcile` (with the same options) would do with it.
    pub reconcile: Option<Action>,
    /// Whether `reconcile` would remove or drop it.
    pub orphan: bool,
    /// The instance as HCS lists it; `null` for a record whose instance is gone.
    #[schemars(schema_with = "hcs_document_or_null")]
    pub instance: Option<Value>,
}

/// `instances list`.
pub type ListDoc = Vec<ListRow>;

/// What `instances remove` did with one id.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemoveResult {
    /// This process removed the instance.
    Removed,
    /// There was no instance.
    Absent,
    /// The removal failed (see `error`).
    Failed,
}

/// One id of `instances remove`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveItem {
    /// The container id.
    pub container_id: String,
    /// What happened.
    pub result: RemoveResult,
    /// What is left to do (an HvSocket entry left for `reconcile`), if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// The HvSocket entry left in its utility VM, with a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_left: Option<EntryLeft>,
    /// Why the removal failed (`failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `instances remove`: one item per id, in the order given.
pub type RemoveDoc = Vec<RemoveItem>;

/// `probe`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeDoc {
    /// The generated container id.
    pub container_id: String,
    /// The isolation probed.
    pub isolation: credguard::Isolation,
    /// The backend (`hcs`, `emulator`).
    pub backend: String,
    /// Whether every step passed.
    pub passed: bool,
    /// The steps, in order.
    pub steps: Vec<ProbeStep>,
}

/// One step of `probe`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeStep {
    /// The step (`add instance`, `verify listing`, `remove instance`, `verify removal`).
    pub step: String,
    /// Whether it passed.
    pub ok: bool,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// What it found, or why it failed.
    pub detail: String,
}

/// `reconcile`: the plan, and (without `--dry-run`) what became of each item.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileDoc {
    /// Whether nothing was changed (`--dry-run`).
    pub dry_run: bool,
    /// The plan.
    pub plan: Vec<PlanItem>,
    /// What became of each item (absent with `--dry-run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<ReconcileResult>>,
}

/// What became of one plan item.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileResult {
    /// The container id.
    pub container_id: String,
    /// The action.
    pub action: Action,
    /// Whether it succeeded.
    pub ok: bool,
    /// Why it failed.
    pub error: Option<String>,
    /// The HvSocket entry its failure left in its utility VM.
    pub entry_left: Option<EntryLeft>,
}

/// One call of the emulator's call log.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CallDoc {
    /// Sequence number, from 1, never reused.
    pub seq: u64,
    /// The HCS function called.
    pub api: Api,
    /// The compute system (`HcsModifyComputeSystem`), if any.
    pub target: Option<String>,
    /// The document received: a JSON value as sent, or a string when it was not JSON.
    #[schemars(schema_with = "call_document")]
    pub document: Value,
    /// The HRESULT returned (`0x8037011B`).
    pub hresult: String,
}

fn call_document(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "The document as received: the HCS document unchanged (PascalCase), or its text when it is not JSON; PluginInput redacted unless --show-secrets."
    })
}

impl CallDoc {
    /// A call-log record as shown, secrets redacted unless `show_secrets`.
    pub fn of(call: &credguard_emulator::CallRecord, show_secrets: bool) -> Self {
        let document = if show_secrets {
            serde_json::from_str(&call.document)
                .unwrap_or_else(|_| Value::String(call.document.clone()))
        } else {
            credguard::redact::redact_document(&call.document)
        };
        CallDoc {
            seq: call.seq,
            api: call.api,
            target: call.target.clone(),
            document,
            hresult: call.hresult.to_string(),
        }
    }
}

/// `emulator log`: the calls, oldest first (`--output jsonl`: one per line).
pub type LogDoc = Vec<CallDoc>;

/// `emulator inject --clear`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultsCleared {
    /// How many queued faults were dropped.
    pub cleared_faults: usize,
}

/// `emulator inject`: the fault queued; with `--list` the queue; with `--clear` how many
/// were dropped.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum InjectDoc {
    /// The fault queued.
    Queued(Fault),
    /// `--list`: the queued faults, in order.
    List(Vec<Fault>),
    /// `--clear`.
    Cleared(FaultsCleared),
}

/// What `emulator reset` dropped.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResetPart {
    /// Every CCG instance.
    CcgInstances,
    /// Every utility VM.
    UtilityVms,
    /// Every queued fault (`--all`).
    Faults,
    /// The call log (`--all`).
    CallLog,
}

/// `emulator reset`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetDoc {
    /// What was dropped.
    pub cleared: Vec<ResetPart>,
}

/// What an `emulator uvm` command did.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UvmChange {
    /// `uvm create`.
    Created,
    /// `uvm remove`.
    Removed,
    /// `uvm stop`.
    Stopped,
}

/// `emulator uvm create|remove|stop`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UvmChangeDoc {
    /// The utility VM's id.
    pub utility_vm: String,
    /// What was done.
    pub action: UvmChange,
}

/// `emulator uvm show`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UvmShowDoc {
    /// The utility VM's id.
    pub utility_vm: String,
    /// Whether it is stopped.
    pub stopped: bool,
    /// Its HvSocket service table: ServiceId -> the entry's service config (ServiceConfig) as HCS
    /// holds it.
    #[schemars(schema_with = "service_table")]
    pub service_table: BTreeMap<String, Value>,
}

fn service_table(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "ServiceId -> the entry's service config, unchanged (PascalCase).",
        "additionalProperties": {"type": "object"}
    })
}

/// `emulator uvm list`: the utility VMs' ids.
pub type UvmListDoc = Vec<String>;

/// A CCG plug-in a spec names.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginDoc {
    /// Its CLSID, as `PluginGUID` holds it.
    pub guid: String,
    /// What it is, when credguard knows it.
    pub name: Option<String>,
}

/// One source of `credspec validate` that was read.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateReport {
    /// The source as given (secrets of `raw://` sources not shown).
    pub source: String,
    /// Where the spec came from, as diagnostics name it.
    pub origin: String,
    /// Always `true`.
    pub readable: bool,
    /// How the spec was stored in its source.
    pub form: SpecForm,
    /// How its bytes were encoded.
    pub encoding: Encoding,
    /// Whether it passed (no errors; no warnings either under `--strict`).
    pub valid: bool,
    /// How many errors.
    pub errors: usize,
    /// How many warnings.
    pub warnings: usize,
    /// The CCG plug-in it names, if any.
    pub plugin: Option<PluginDoc>,
    /// Why its OCI bundle disables gMSA, if it does.
    pub gmsa_disabled: Option<String>,
    /// The linter's findings.
    pub diagnostics: Vec<Diagnostic>,
}

/// One source of `credspec validate` that could not be read.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnreadableSource {
    /// The source as given.
    pub source: String,
    /// Always `false`.
    pub readable: bool,
    /// Why it could not be read.
    pub error: String,
}

/// One source of `credspec validate`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ValidateItem {
    /// A source that was read and linted.
    Read(Box<ValidateReport>),
    /// A source that could not be read (exit 2).
    Unreadable(UnreadableSource),
}

/// `credspec validate`: one item per source, in the order given.
pub type ValidateDoc = Vec<ValidateItem>;

/// `credspec show`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowDoc {
    /// Where the spec came from.
    pub origin: String,
    /// How the spec was stored in its source.
    pub form: SpecForm,
    /// How its bytes were encoded.
    pub encoding: Encoding,
    /// The CCG plug-in it names, if any.
    pub plugin: Option<PluginDoc>,
    /// How many lint errors.
    pub errors: usize,
    /// How many lint warnings.
    pub warnings: usize,
    /// Why its OCI bundle disables gMSA, if it does.
    pub gmsa_disabled: Option<String>,
    /// The spec as it would be sent.
    #[schemars(schema_with = "credential_spec")]
    pub spec: Value,
}

/// `credspec new`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDoc {
    /// The file written (`--save`), or `null`.
    pub written: Option<String>,
    /// The file name `--save` uses.
    pub file_name: String,
    /// What the generator warns about.
    pub warnings: Vec<Diagnostic>,
    /// The spec generated (as is: it is the file asked for); `null` with `--save`.
    #[schemars(schema_with = "credential_spec_or_null")]
    pub spec: Option<Value>,
}

fn credential_spec_or_null(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": ["object", "null"],
        "description": "A credential spec (PascalCase field names, as New-CredentialSpec writes them); null when it was written to a file."
    })
}

/// `version`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionDoc {
    /// The crate version (`0.1.0`).
    pub version: String,
    /// The git commit it was built from (12 hex digits), or `unknown`.
    pub commit: String,
    /// The target triple it was built for.
    pub target: String,
}

/// `agent`: printed once, when the agent stops (its record while it runs is its log).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentDoc {
    /// Rounds run, successful or failed.
    pub rounds: u64,
    /// Rounds that removed nothing because a source (or HCS) failed.
    pub failed_rounds: u64,
    /// Changes made: instances removed, stale journal records dropped.
    pub removed: u64,
}

/// `agent service install` and `agent service uninstall`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentServiceDoc {
    /// The service's name (`credguard-agent`).
    pub service: String,
    /// What was done: `installed and started`, `stopped and uninstalled`.
    pub action: String,
}

/// `k8s policy`: a Kubernetes `List` of the ValidatingAdmissionPolicies and their bindings,
/// which `kubectl apply -f -` takes as it is (so its fields are Kubernetes' camelCase, not
/// credguard's snake_case).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct K8sPolicyDoc {
    /// `v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// `List`.
    pub kind: String,
    /// The error policy and its binding, the warning policy and its binding.
    #[schemars(schema_with = "kubernetes_objects")]
    pub items: Vec<Value>,
}

fn kubernetes_objects(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "description": "ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding objects (admissionregistration.k8s.io/v1), as Kubernetes writes them.",
        "items": {
            "type": "object",
            "required": ["apiVersion", "kind", "metadata", "spec"],
            "properties": {
                "apiVersion": {"const": "admissionregistration.k8s.io/v1"},
                "kind": {"enum": ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]}
            }
        }
    })
}

/// `k8s check`: the findings, file by file, and the files that could not be read.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct K8sCheckDoc {
    /// The files read, in the order checked.
    pub files: Vec<String>,
    /// How many Kubernetes objects were read.
    pub objects: usize,
    /// What the check found, each with its rule (`K8S001`..., or a lint code), file and line.
    pub findings: Vec<credguard_k8s::check::Finding>,
    /// Files that could not be read or parsed (exit 2).
    pub unreadable: Vec<credguard_k8s::check::Unreadable>,
    /// How many findings are errors (exit 1 when any).
    pub errors: usize,
    /// How many findings are warnings.
    pub warnings: usize,
}

impl From<&credguard_k8s::check::Report> for K8sCheckDoc {
    fn from(r: &credguard_k8s::check::Report) -> Self {
        K8sCheckDoc {
            files: r.files.clone(),
            objects: r.objects,
            findings: r.findings.clone(),
            unreadable: r.unreadable.clone(),
            errors: r.errors,
            warnings: r.warnings,
        }
    }
}

/// Every command's schema, by the name of its file under `docs/schema/` (without `.json`):
/// the command's words joined by `-`, and `error` for [`ErrorDoc`].
#[cfg(test)]
pub fn schemas() -> Vec<(&'static str, Schema)> {
    // What is printed: an `Option` field that is always written is required (and may be
    // null); one skipped when empty is not.
    fn schema<T: JsonSchema>() -> Schema {
        schemars::generate::SchemaSettings::draft2020_12()
            .for_serialize()
            .into_generator()
            .into_root_schema_for::<T>()
    }
    vec![
        ("error", schema::<ErrorDoc>()),
        ("instances-add", schema::<AddDoc>()),
        ("instances-list", schema::<ListDoc>()),
        ("instances-show", schema::<InstanceDoc>()),
        ("instances-remove", schema::<RemoveDoc>()),
        ("probe", schema::<ProbeDoc>()),
        ("reconcile", schema::<ReconcileDoc>()),
        ("agent", schema::<AgentDoc>()),
        ("agent-service-install", schema::<AgentServiceDoc>()),
        ("agent-service-uninstall", schema::<AgentServiceDoc>()),
        ("emulator-log", schema::<LogDoc>()),
        ("emulator-inject", schema::<InjectDoc>()),
        ("emulator-reset", schema::<ResetDoc>()),
        ("emulator-uvm-create", schema::<UvmChangeDoc>()),
        ("emulator-uvm-show", schema::<UvmShowDoc>()),
        ("emulator-uvm-list", schema::<UvmListDoc>()),
        ("emulator-uvm-remove", schema::<UvmChangeDoc>()),
        ("emulator-uvm-stop", schema::<UvmChangeDoc>()),
        ("credspec-validate", schema::<ValidateDoc>()),
        ("credspec-show", schema::<ShowDoc>()),
        ("credspec-new", schema::<NewDoc>()),
        ("version", schema::<VersionDoc>()),
        ("doctor", schema::<credguard::doctor::Report>()),
        ("explain", schema::<credguard::explain::Report>()),
        ("k8s-policy", schema::<K8sPolicyDoc>()),
        ("k8s-check", schema::<K8sCheckDoc>()),
    ]
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// The committed schemas are the ones the types give: `CREDGUARD_BLESS=1` rewrites
    /// them after a change of an output type.
    #[test]
    fn committed_schemas_are_the_generated_ones() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/schema");
        let bless = std::env::var_os("CREDGUARD_BLESS").is_some_and(|v| v == "1");
        let mut stale = Vec::new();
        let mut names = Vec::new();
        for (name, schema) in super::schemas() {
            let file = format!("{name}.json");
            let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            let path = dir.join(&file);
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(file.clone());
            }
            names.push(file);
        }
        // No schema of a command that is gone.
        let mut extra: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".json") && !names.contains(f))
            .collect();
        extra.sort();
        if bless {
            for f in &extra {
                std::fs::remove_file(dir.join(f)).unwrap();
            }
            return;
        }
        assert!(
            stale.is_empty() && extra.is_empty(),
            "docs/schema/ is stale: {stale:?} differ from the output types, {extra:?} belong to no command; \
             run `CREDGUARD_BLESS=1 cargo test -p credguard-cli --bin credguard schemas` and commit docs/schema/"
        );
    }
}
