//! `credguard credspec`: check and show credential specs.
//!
//! The full linter, sources and generator land with the credential-spec work; until then
//! `validate` checks that each source is a usable JSON object.

use clap::Subcommand;

use crate::Context;
use crate::credspec_input::read_credspec;
use crate::exit::{CliError, Exit};

#[derive(Debug, Subcommand)]
pub enum CredspecCommand {
    /// Check credential specs; exit 0 when all are usable.
    Validate {
        /// Credential spec sources: file paths, or `-` for standard input.
        #[arg(required = true, value_name = "SOURCE")]
        sources: Vec<String>,
    },
}

pub fn run(_ctx: &Context, cmd: CredspecCommand) -> Result<Exit, CliError> {
    match cmd {
        CredspecCommand::Validate { sources } => {
            for s in &sources {
                read_credspec(s)?;
                outln!("{s}: ok");
            }
            Ok(Exit::Ok)
        }
    }
}
