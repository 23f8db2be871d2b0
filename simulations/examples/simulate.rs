//! `cargo run --release -p meshwork-simulations --example simulate -- --nodes 1000 ...`:
//! the simulator without the node crate. Exit codes: 0 every invariant held;
//! 1 an invariant broke (the repro command is on stderr); 2 bad options.

use clap::Parser;
use meshwork_simulations::SimArgs;
use std::process::ExitCode;

/// Simulates a meshwork mesh in virtual time.
#[derive(Parser)]
#[command(name = "simulate", version)]
struct Cli {
    #[command(flatten)]
    args: SimArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match meshwork_simulations::run_cli(&cli.args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
