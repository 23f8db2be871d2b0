//! `meshwork tasks`: the built-in tasks.

use crate::tasks::BUILTINS;
use std::process::ExitCode;

pub(super) fn run() -> anyhow::Result<ExitCode> {
    let width = BUILTINS.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, about) in BUILTINS {
        println!("{name:width$}  {about}");
    }
    println!("\nArguments of each: meshwork run <task> --help");
    Ok(ExitCode::SUCCESS)
}
