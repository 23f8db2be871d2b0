//! The `meshwork` binary: parse, run, map errors to one line and an exit code.

use clap::error::ErrorKind;
use clap::Parser;
use meshwork::cli::{task_list, Cli, Command, LogFormat, UsageError, EXIT_MESH};
use std::io::IsTerminal;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // `meshwork run <unknown task>`: say which there are.
            let command = std::env::args().skip(1).find(|a| !a.starts_with('-'));
            if e.kind() == ErrorKind::InvalidSubcommand && command.as_deref() == Some("run") {
                eprintln!("\n{}", task_list());
            }
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    // Nodes say what they do; commands that start many peers stay quiet.
    let default = match cli.command {
        Command::Simulate(_) | Command::Demo(_) | Command::Bench(_) => "warn,libp2p_kad=error",
        _ => "warn,libp2p_kad=error,meshwork=info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only for a person at a terminal who has not asked for none
    // (https://no-color.org): a log file or a pipe gets plain text.
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(colour).init(),
        LogFormat::Json => logs.with_ansi(false).json().init(),
    }
    // Failpoints named in FAILPOINTS (tests only: see node/src/service).
    let _failpoints = fail::FailScenario::setup();
    // A panicking task is contained by the executor; report it as a log line.
    std::panic::set_hook(Box::new(|info| tracing::error!("panic: {info}")));
    // One thread drives the node (the swarm, the machine and the CLI's own
    // tasks): they hand work to each other without crossing threads, which
    // keeps round trips short and memory small. Pieces run on the
    // executor's own low-priority threads (tiny ones inline), see `executor`.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_MESH);
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(code) => code,
        Err(e) if e.is::<UsageError>() => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_MESH)
        }
    }
}
