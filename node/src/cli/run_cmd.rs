//! `meshwork run <task>`: join the mesh, run one job, print its result.

use super::mesh::{join, wait_for};
use super::{short, slots_or_cores, PeerOpts, UsageError, EXIT_CANCELLED, EXIT_FAILED};
use crate::client::{Client, JobOptions, JobReport, RunError};
use crate::tasks::{hash_search, mandelbrot, noop, primes, sleep, wordcount, Rendered};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use meshwork_protocol::task::Task;
use meshwork_protocol::{JobError, JobEvent, JobId};
use std::cell::Cell;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `meshwork run`.
#[derive(Debug, Args)]
#[command(after_long_help = "Exit codes: 0 done; 1 the job failed; 2 bad arguments; \
3 no mesh (a node could not start); 130 cancelled with Ctrl-C.")]
pub struct RunArgs {
    #[command(flatten)]
    peer: PeerOpts,
    /// Pieces this process runs itself at once [default: number of cores]; 0 only submits.
    #[arg(long, global = true)]
    slots: Option<u32>,
    /// Wait until this many other peers advertise the task before starting.
    #[arg(long, default_value_t = 0, global = true, value_name = "N")]
    min_peers: usize,
    /// Longest wait for peers, in seconds; then the job starts with whoever is there.
    #[arg(long, default_value_t = 3.0, global = true, value_name = "SECS")]
    wait: f64,
    /// A piece failing this many times fails the job.
    #[arg(long, default_value_t = 3, global = true, value_name = "N")]
    max_attempts: u32,
    /// Deadline of one piece, in seconds.
    #[arg(long, default_value_t = 300.0, global = true, value_name = "SECS")]
    piece_timeout: f64,
    /// A job no peer can take fails after this many seconds.
    #[arg(long, default_value_t = 10.0, global = true, value_name = "SECS")]
    stall_timeout: f64,
    /// Do not launch speculative backups of straggling pieces.
    #[arg(long, global = true)]
    no_backups: bool,
    /// Print, per batch of pieces, which peer got it and why.
    #[arg(long, global = true)]
    explain: bool,
    /// Print the result and the summary as one JSON object on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// The task and its arguments.
    #[command(subcommand)]
    task: TaskCommand,
}

/// The built-in tasks.
#[derive(Debug, Subcommand)]
enum TaskCommand {
    /// Count the primes in [FROM, TO).
    Primes(primes::PrimesArgs),
    /// Render the Mandelbrot set to a PNG, tiles on peers.
    Mandelbrot(mandelbrot::MandelbrotArgs),
    /// Find a nonce whose SHA-256 has BITS leading zero bits; first hit wins.
    HashSearch(hash_search::HashSearchArgs),
    /// Count the words of a text file (its chunks travel with the pieces).
    Wordcount(wordcount::WordcountArgs),
    /// Trivial pieces that echo their index (for benchmarks).
    Noop(noop::NoopArgs),
    /// Pieces that sleep (for fault tests).
    Sleep(sleep::SleepArgs),
}

pub(super) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let usage = |e: anyhow::Error| anyhow::Error::new(UsageError(e.to_string()));
    let node = join(&args.peer, slots_or_cores(args.slots)).await?;
    let client = node.client();
    let code = match &args.task {
        TaskCommand::Primes(a) => {
            execute(&client, &primes::Primes, a.input().map_err(usage)?, primes::render, &args).await
        }
        TaskCommand::Mandelbrot(a) => {
            execute(&client, &mandelbrot::Mandelbrot, a.input().map_err(usage)?, mandelbrot::render, &args).await
        }
        TaskCommand::HashSearch(a) => {
            execute(&client, &hash_search::HashSearch, a.input().map_err(usage)?, hash_search::render, &args).await
        }
        TaskCommand::Wordcount(a) => {
            execute(&client, &wordcount::Wordcount, a.input().map_err(usage)?, wordcount::render, &args).await
        }
        TaskCommand::Noop(a) => execute(&client, &noop::Noop, a.input().map_err(usage)?, noop::render, &args).await,
        TaskCommand::Sleep(a) => execute(&client, &sleep::Sleep, a.input().map_err(usage)?, sleep::render, &args).await,
    };
    node.shutdown().await;
    code
}

type Render<T> = fn(&<T as Task>::Input, &<T as Task>::Result) -> anyhow::Result<Rendered>;

/// Waits for peers, runs the job with a progress bar, prints the result.
async fn execute<T: Task>(
    client: &Client,
    task: &T,
    input: T::Input,
    render: Render<T>,
    args: &RunArgs,
) -> anyhow::Result<ExitCode> {
    wait_for_peers(client, T::NAME, args).await?;
    let opts = JobOptions {
        max_attempts: args.max_attempts,
        piece_timeout: Duration::from_secs_f64(args.piece_timeout),
        stall_timeout: Duration::from_secs_f64(args.stall_timeout),
        explain: args.explain,
        backups: !args.no_backups,
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} pieces [{bar:30}] {elapsed} (eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let job: Cell<Option<JobId>> = Cell::new(None);
    let names = client.names().clone();
    // Printed whether or not stderr is a terminal (a hidden bar prints nothing itself).
    let say = |line: String| bar.suspend(|| eprintln!("{line}"));
    let on_event = |id: JobId, event: &JobEvent| {
        job.set(Some(id));
        match event {
            JobEvent::Progress { done, total, .. } => {
                bar.set_length(*total as u64);
                bar.set_position(*done as u64);
            }
            JobEvent::Retried { piece, peer, cause, .. } => {
                say(format!("piece {piece} failed on {}: {cause}; retrying elsewhere", short(&names.name(*peer))))
            }
            JobEvent::Refused { peer, reason, .. } => say(format!("{} {reason}", short(&names.name(*peer)))),
            JobEvent::Placed { pieces, choice, backup, .. } => {
                let load = |c: &meshwork_protocol::policy::Candidate| {
                    format!("{} {}/{}", short(&names.name(c.peer)), c.load, c.slots)
                };
                let others: Vec<String> =
                    choice.considered.iter().filter(|c| c.peer != choice.chosen.peer).map(load).collect();
                say(format!(
                    "{}{} → {} (load {}/{}){}",
                    if *backup { "backup of " } else { "" },
                    describe_pieces(pieces),
                    short(&names.name(choice.chosen.peer)),
                    choice.chosen.load,
                    choice.chosen.slots,
                    if others.is_empty() { String::new() } else { format!("; weighed against {}", others.join(", ")) }
                ));
            }
            JobEvent::Unplaceable { piece, why, .. } => {
                say(format!("piece {piece} cannot be placed: {}", why.describe(&|k| short(&names.name(k)))))
            }
            JobEvent::Finished { .. } => {}
        }
    };
    let running = client.run(task, &input, &opts, on_event);
    tokio::pin!(running);
    let outcome = tokio::select! {
        r = &mut running => r,
        _ = tokio::signal::ctrl_c() => {
            if let Some(id) = job.get() {
                client.cancel(id).await;
            }
            running.await
        }
    };
    bar.finish_and_clear();
    match outcome {
        Ok((result, report)) => {
            let shown = render(&input, &result)?;
            print_outcome(T::NAME, &shown, &report, args.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(RunError::Job { error: JobError::Cancelled, .. }) => {
            eprintln!("cancelled");
            Ok(ExitCode::from(EXIT_CANCELLED))
        }
        Err(e) => {
            if args.json {
                println!("{}", serde_json::json!({ "task": T::NAME, "error": e.to_string() }));
            }
            eprintln!("error: job failed: {e}");
            Ok(ExitCode::from(EXIT_FAILED))
        }
    }
}

/// Waits until `--min-peers` peers run the task (or, without it, until the
/// peers found stop changing), at most `--wait`.
async fn wait_for_peers(client: &Client, task: &str, args: &RunArgs) -> anyhow::Result<()> {
    let alone = args.peer.join.is_empty() && args.peer.no_mdns;
    if alone && args.min_peers == 0 {
        return Ok(());
    }
    let want = args.min_peers.max(1);
    let runs = |peers: &[crate::client::PeerInfo]| peers.iter().filter(|p| p.tasks.iter().any(|t| t == task)).count();
    let peers = wait_for(client, Duration::from_secs_f64(args.wait.max(0.0)), |p| runs(p) >= want).await?;
    if runs(&peers) < args.min_peers {
        eprintln!(
            "warning: only {} of {} peers run {task} after {}s; starting anyway",
            runs(&peers),
            args.min_peers,
            args.wait
        );
    }
    Ok(())
}

fn describe_pieces(pieces: &[u32]) -> String {
    match pieces {
        [one] => format!("piece {one}"),
        [first, .., last] if (*last - *first) as usize + 1 == pieces.len() => {
            format!("pieces {first}..={last}")
        }
        _ => format!("{} pieces", pieces.len()),
    }
}

fn print_outcome(task: &str, shown: &Rendered, report: &JobReport, json: bool) -> anyhow::Result<()> {
    if json {
        let value = serde_json::json!({ "task": task, "result": shown.json, "summary": report });
        println!("{value}");
        return Ok(());
    }
    println!("{}", shown.text);
    let per_peer: Vec<String> = report.pieces_per_peer.iter().map(|(p, n)| format!("{} {n}", short(p))).collect();
    eprintln!(
        "{} pieces in {:.3}s · per peer: {} · retries {} · backups {} ({} won) · duplicates ignored {}",
        report.pieces,
        report.wall_s,
        per_peer.join(", "),
        report.retries,
        report.backups,
        report.backups_won,
        report.duplicates_ignored
    );
    Ok(())
}
