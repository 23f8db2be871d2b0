//! `meshwork completions <shell>`: the shell's completion script, generated
//! from the same clap definitions the parser uses, so it cannot drift from
//! the real arguments.

use super::Cli;
use clap::{Args, CommandFactory};
use clap_complete::Shell;
use std::process::ExitCode;

/// Arguments of `meshwork completions`.
#[derive(Debug, Args)]
#[command(after_help = "Install it where the shell looks, e.g.:
  meshwork completions bash > ~/.local/share/bash-completion/completions/meshwork
  meshwork completions zsh > ~/.zfunc/_meshwork      (with fpath+=~/.zfunc before compinit)
  meshwork completions fish > ~/.config/fish/completions/meshwork.fish")]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    shell: Shell,
}

pub(super) fn run(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    clap_complete::generate(args.shell, &mut Cli::command(), "meshwork", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
