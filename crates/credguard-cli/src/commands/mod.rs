//! One module per `credguard` command.

pub mod credspec;
pub mod emulator;
pub mod instances;
pub mod probe;
pub mod reconcile;
