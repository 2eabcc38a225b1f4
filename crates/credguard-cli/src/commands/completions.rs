//! `credguard completions <SHELL>`: a shell completion script, generated from the same clap
//! command tree the binary parses with, on standard output.

use clap::Args;
use clap_complete::Shell;

use crate::exit::{CliError, Exit};

pub const EXAMPLES: &str = "\
Examples:
  credguard completions bash > /etc/bash_completion.d/credguard
  # with fpath+=(~/.zfunc) in ~/.zshrc
  credguard completions zsh > ~/.zfunc/_credguard
  credguard completions fish > ~/.config/fish/completions/credguard.fish
  credguard completions powershell >> $PROFILE
  credguard completions elvish >> ~/.config/elvish/rc.elv";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(mut cmd: clap::Command, args: &CompletionsArgs) -> Result<Exit, CliError> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "credguard", &mut script);
    crate::output::write_bytes(&script);
    Ok(Exit::Ok)
}
