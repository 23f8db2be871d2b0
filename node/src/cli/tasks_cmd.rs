//! `meshwork tasks`: the built-in tasks, and `wasm` for a user's own module.

use crate::tasks::BUILTINS;
use crate::wasm::Wasm;
use meshwork_protocol::task::Task;
use std::process::ExitCode;

/// `wasm` as listed (every node runs it unless started with --no-wasm).
const WASM: (&str, &str) = (Wasm::NAME, "your own WebAssembly module (WASI preview 1) on every piece");

pub(super) fn run() -> anyhow::Result<ExitCode> {
    let width = BUILTINS.iter().chain([&WASM]).map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, about) in BUILTINS.iter().chain([&WASM]) {
        println!("{name:width$}  {about}");
    }
    println!("\nArguments of each: meshwork run <task> --help");
    Ok(ExitCode::SUCCESS)
}
