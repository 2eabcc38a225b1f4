//! Placing a CCG instance into the container documents HCS is given.
//!
//! - V2, process isolation: the instance's `CredentialGuard` state goes to
//!   `ComputeSystem.Container.ContainerCredentialGuard`.
//! - V2, Hyper-V isolation: the same state goes to `HostedSystem.Container.ContainerCredentialGuard`
//!   (the document sent to the utility VM); the HvSocket entry goes to the VM's service
//!   table (hot-added by the lifecycle, or placed in the VM document by the caller).
//! - V1: no instance is needed; the credential spec goes into the `Credentials` field.
//!
//! Documents are built on whatever the runtime already has: fields this crate does not know
//! are kept, in order.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::text::ShownId;
use crate::wire::{Container, ContainerCredentialGuardInstance};

/// The instance has no `CredentialGuard` state to place: a container without gMSA must not
/// be created silently.
#[derive(Debug, thiserror::Error)]
#[error(
    "container `{container_id}`: the CCG instance has no `CredentialGuard` state to put into the container document; create the instance again"
)]
pub struct NoCredentialGuard {
    /// The container the instance belongs to.
    pub container_id: ShownId,
}

/// `Version` of the HCS schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SchemaVersion {
    /// `Major`.
    #[serde(rename = "Major", default)]
    pub major: i32,
    /// `Minor`.
    #[serde(rename = "Minor", default)]
    pub minor: i32,
}

impl SchemaVersion {
    /// 2.1, the version hcsshim uses for V2 containers.
    pub const V2_1: SchemaVersion = SchemaVersion { major: 2, minor: 1 };
}

/// The V2 `ComputeSystem` document (as far as this crate fills it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ComputeSystem {
    /// `Owner`.
    #[serde(rename = "Owner", default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    /// `SchemaVersion`.
    #[serde(
        rename = "SchemaVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub schema_version: Option<SchemaVersion>,
    /// `HostingSystemId`.
    #[serde(
        rename = "HostingSystemId",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub hosting_system_id: String,
    /// `HostedSystem`.
    #[serde(
        rename = "HostedSystem",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub hosted_system: Option<Value>,
    /// `Container`.
    #[serde(rename = "Container", default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// `VirtualMachine`.
    #[serde(
        rename = "VirtualMachine",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub virtual_machine: Option<Value>,
    /// Any other field, kept as given.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The V2 `HostedSystem` document sent to a utility VM.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HostedSystem {
    /// `SchemaVersion`.
    #[serde(
        rename = "SchemaVersion",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub schema_version: Option<SchemaVersion>,
    /// `Container`.
    #[serde(rename = "Container", default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Any other field, kept as given.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Puts the instance's state into `Container.ContainerCredentialGuard` of a process-isolated
/// container's `ComputeSystem` document (creating the `Container` object if needed).
///
/// # Errors
/// The instance has no `CredentialGuard` state (a container without gMSA must not be
/// created silently).
pub fn place_in_compute_system(
    doc: &mut ComputeSystem,
    instance: &ContainerCredentialGuardInstance,
) -> Result<(), NoCredentialGuard> {
    place(&mut doc.container, instance)
}

/// Puts the instance's state into `Container.ContainerCredentialGuard` of the
/// `HostedSystem` document of a Hyper-V isolated container.
///
/// # Errors
/// The instance has no `CredentialGuard` state.
pub fn place_in_hosted_system(
    doc: &mut HostedSystem,
    instance: &ContainerCredentialGuardInstance,
) -> Result<(), NoCredentialGuard> {
    place(&mut doc.container, instance)
}

fn place(
    container: &mut Option<Container>,
    instance: &ContainerCredentialGuardInstance,
) -> Result<(), NoCredentialGuard> {
    let state = instance
        .credential_guard
        .clone()
        .ok_or_else(|| NoCredentialGuard {
            container_id: ShownId::new(&instance.id),
        })?;
    container
        .get_or_insert_with(Container::default)
        .container_credential_guard = Some(state);
    Ok(())
}

/// A new process-isolated `ComputeSystem` document (schema 2.1) carrying the instance.
///
/// # Errors
/// The instance has no `CredentialGuard` state.
pub fn process_isolated(
    owner: &str,
    instance: &ContainerCredentialGuardInstance,
) -> Result<ComputeSystem, NoCredentialGuard> {
    let mut doc = ComputeSystem {
        owner: owner.to_owned(),
        schema_version: Some(SchemaVersion::V2_1),
        ..Default::default()
    };
    place_in_compute_system(&mut doc, instance)?;
    Ok(doc)
}

/// A new `HostedSystem` document (schema 2.1) carrying the instance, for a Hyper-V isolated
/// container.
///
/// # Errors
/// The instance has no `CredentialGuard` state.
pub fn hyperv_hosted(
    instance: &ContainerCredentialGuardInstance,
) -> Result<HostedSystem, NoCredentialGuard> {
    let mut doc = HostedSystem {
        schema_version: Some(SchemaVersion::V2_1),
        ..Default::default()
    };
    place_in_hosted_system(&mut doc, instance)?;
    Ok(doc)
}

/// Puts a credential spec into the `Credentials` field of a V1 container document (V1
/// containers need no CCG instance: HCS handles the spec itself).
pub fn place_in_v1(doc: &mut Map<String, Value>, credential_spec: &str) {
    doc.insert(
        "Credentials".to_owned(),
        Value::String(credential_spec.to_owned()),
    );
}
