//! One module per `credguard` command.

pub mod agent;
pub mod completions;
pub mod credspec;
pub mod doctor;
pub mod emulator;
pub mod explain;
pub mod instances;
pub mod k8s;
pub mod k8s_webhook;
pub mod man;
pub mod probe;
pub mod reconcile;
pub mod version;
