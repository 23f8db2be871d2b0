//! `meshwork run <task>`: join the mesh, run one job, print its result.

use super::exec_cmd::{self, ExecArgs};
use super::interrupt::Interrupt;
use super::mesh::{join, reach, wait_for};
use super::progress::Status;
use super::{checks, short, slots_or_cores, usage, PeerOpts, EXIT_CANCELLED, EXIT_FAILED};
use crate::client::{Client, JobOptions, JobReport, PeerInfo};
use crate::net::peer_map::PeerNames;
use crate::service::kind::{Kind, Render, Typed};
use crate::tasks::{hash_search, mandelbrot, noop, primes, sleep, wordcount, Rendered};
use crate::wasm::args::WasmArgs;
use crate::wasm::{Limits, ModuleId, Sandbox, Wasm};
use clap::{Args, Subcommand};
use meshwork_protocol::policy::Candidate;
use meshwork_protocol::task::Task;
use meshwork_protocol::{human, JobEvent, JobId, JobSpec, PeerKey};
use serde::Serialize;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Arguments of `meshwork run`.
#[derive(Debug, Args)]
#[command(after_long_help = "With --json, stdout gets one object, {\"task\",\"result\",\"summary\"} (or
{\"task\",\"error\"}), and stderr one object per job event, peers by full peer id:
  {\"event\":\"retried\",\"job\",\"piece\",\"peer\",\"cause\"}     a piece failed there; goes elsewhere
  {\"event\":\"refused\",\"job\",\"peer\",\"reason\"}             refused for a reason other than busy
  {\"event\":\"warning\",\"message\"}                          e.g. no peer runs the task
and with --explain also
  {\"event\":\"placed\",\"job\",\"peer\",\"pieces\":[..],\"backup\",\"load\",\"slots\",\"considered\":[{\"peer\",\"load\",\"slots\"}]}
  {\"event\":\"unplaceable\",\"job\",\"piece\",\"why\",\"reasons\":[{\"reason\",\"peers\"}]}
  {\"event\":\"progress\",\"job\",\"done\",\"total\"}
Log lines (RUST_LOG) also go to stderr: read the lines that start with '{'.

Ctrl-C cancels at any moment (the peers holding pieces are told to stop them);
a second Ctrl-C exits at once.

Exit codes: 0 done; 1 the job failed; 2 bad arguments (checked before joining); \
3 no mesh (a --join address not reached, fewer than --min-peers peers, or a node \
could not start); 130 cancelled with Ctrl-C.")]
#[command(next_help_heading = "Run options")]
pub struct RunArgs {
    /// Pieces this process runs itself at once [default: number of cores]; 0 only submits.
    #[arg(long, global = true)]
    slots: Option<u32>,
    /// Wait until this many other peers advertise the task before starting;
    /// fewer after --wait is an error (exit 3) unless --or-run-anyway.
    #[arg(long, default_value_t = 0, global = true, value_name = "N")]
    min_peers: usize,
    /// Start the job with whoever is there (even no one: this machine
    /// alone) when --min-peers are not there after --wait.
    #[arg(long, global = true)]
    or_run_anyway: bool,
    /// Longest wait, in seconds, for a --join address to be reached (not
    /// reached: exit 3), for --min-peers, and for the peers found to stop
    /// coming (the wait ends about a second after the last one).
    #[arg(long, default_value_t = 3.0, global = true, value_name = "SECS", value_parser = checks::secs)]
    wait: f64,
    /// A piece failing this many times fails the job (1 or more).
    #[arg(long, default_value_t = 3, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: u32,
    /// Deadline of one piece, in seconds [default: 300; for exec:
    /// --timeout plus 60, or a day].
    #[arg(long, global = true, value_name = "SECS", value_parser = checks::positive_secs)]
    piece_timeout: Option<f64>,
    /// A job no peer can take fails after this many seconds.
    #[arg(long, default_value_t = 10.0, global = true, value_name = "SECS", value_parser = checks::positive_secs)]
    stall_timeout: f64,
    /// Do not launch speculative backups of straggling pieces.
    #[arg(long, global = true)]
    no_backups: bool,
    /// Print, per batch of pieces, which peer got it and why (with --json
    /// also unplaceable pieces and progress).
    #[arg(long, global = true)]
    explain: bool,
    /// Print the result and the summary as one JSON object on stdout, and
    /// job events as one JSON object per line on stderr (see --help).
    #[arg(long, global = true)]
    json: bool,
    /// Where this peer listens, the mesh it joins, limits.
    #[command(flatten)]
    peer: PeerOpts,
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
    /// Find a nonce whose SHA-256 has --difficulty BITS leading zero bits; first hit wins.
    HashSearch(hash_search::HashSearchArgs),
    /// Count the words of a text file (its chunks travel with the pieces).
    ///
    /// A word is a run of letters and digits (of any script), compared in
    /// lower case: "Café" and "CAFÉ" are one word; anything else separates
    /// words, so "don't" is "don" and "t", and "4-2" is "4" and "2".
    Wordcount(wordcount::WordcountArgs),
    /// Trivial pieces that echo their index (for benchmarks).
    Noop(noop::NoopArgs),
    /// Pieces that sleep (for fault tests).
    Sleep(sleep::SleepArgs),
    /// Your own WebAssembly module (WASI preview 1) on every piece.
    Wasm(WasmArgs),
    /// A command for each input, on the nodes that allow it (GNU parallel's way).
    Exec(ExecArgs),
}

/// A piece's deadline unless --piece-timeout says otherwise.
const PIECE_TIMEOUT: Duration = Duration::from_secs(300);

impl RunArgs {
    /// Whether `--json` was given.
    pub(super) fn json(&self) -> bool {
        self.json
    }

    /// `--piece-timeout`, or `default`.
    fn piece_timeout(&self, default: Duration) -> Duration {
        self.piece_timeout.map_or(default, Duration::from_secs_f64)
    }

    /// Sets the limits and switches of `spec` these options give (a
    /// piece's deadline is `default_timeout` unless --piece-timeout).
    pub(super) fn apply(&self, spec: &mut JobSpec, default_timeout: Duration) {
        spec.max_attempts = self.max_attempts;
        spec.piece_timeout = self.piece_timeout(default_timeout);
        spec.stall_timeout = Duration::from_secs_f64(self.stall_timeout);
        spec.explain = self.explain;
        spec.backups = !self.no_backups;
    }
}

pub(super) async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    match &args.task {
        TaskCommand::Primes(a) => job(&primes::Primes, a.input(), primes::render, &args).await,
        TaskCommand::Mandelbrot(a) => job(&mandelbrot::Mandelbrot, a.input_for_run(), mandelbrot::render, &args).await,
        TaskCommand::HashSearch(a) => job(&hash_search::HashSearch, a.input(), hash_search::render, &args).await,
        TaskCommand::Wordcount(a) => job(&wordcount::Wordcount, a.input(), wordcount::render, &args).await,
        TaskCommand::Noop(a) => job(&noop::Noop, a.input(), noop::render, &args).await,
        TaskCommand::Sleep(a) => job(&sleep::Sleep, a.input(), sleep::render, &args).await,
        TaskCommand::Wasm(a) => wasm_job(a, &args).await,
        TaskCommand::Exec(a) => {
            let prepared = a.prepare(args.json).map_err(usage)?;
            on_mesh(&args, async |client, interrupt| exec_cmd::execute(client, &prepared, &args, interrupt).await).await
        }
    }
}

/// A task and its arguments alone, as the service takes them.
#[derive(Debug, clap::Parser)]
#[command(no_binary_name = true)]
struct TaskOnly {
    #[command(subcommand)]
    task: TaskCommand,
}

/// A job of `task` with `args` (as `meshwork run <task>` takes them) as
/// the service runs it: the built-in tasks (wasm and exec jobs need their
/// submitter's files and terminal, so they run with `meshwork run`).
pub fn job_kind(task: &str, args: &[String]) -> anyhow::Result<Box<dyn Kind>> {
    use clap::Parser;
    let words = std::iter::once(task.to_string()).chain(args.iter().cloned());
    // clap's own words, without its "error: " and its pointer to --help.
    let parsed = TaskOnly::try_parse_from(words).map_err(|e| {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or_default();
        anyhow::anyhow!("{}", first.strip_prefix("error: ").unwrap_or(first))
    })?;
    fn typed<T: Task>(task: T, input: anyhow::Result<T::Input>, render: Render<T>) -> anyhow::Result<Box<dyn Kind>>
    where
        T::Input: Send + Sync,
    {
        Ok(Box::new(Typed { task, input: input?, render }))
    }
    match parsed.task {
        TaskCommand::Primes(a) => typed(primes::Primes, a.input(), primes::render),
        TaskCommand::Mandelbrot(a) => typed(mandelbrot::Mandelbrot, a.input(), mandelbrot::render),
        TaskCommand::HashSearch(a) => typed(hash_search::HashSearch, a.input(), hash_search::render),
        TaskCommand::Wordcount(a) => typed(wordcount::Wordcount, a.input(), wordcount::render),
        TaskCommand::Noop(a) => typed(noop::Noop, a.input(), noop::render),
        TaskCommand::Sleep(a) => typed(sleep::Sleep, a.input(), sleep::render),
        TaskCommand::Wasm(_) | TaskCommand::Exec(_) => {
            anyhow::bail!("{task} jobs need their submitter's files and terminal: run them with `meshwork run {task}`")
        }
    }
}

/// Checks the task's arguments (clap has checked the rest while parsing),
/// and only then joins the mesh and runs the job: a mistake in the
/// arguments costs nothing but its error message.
async fn job<T: Task>(
    task: &T,
    input: anyhow::Result<T::Input>,
    render: Render<T>,
    args: &RunArgs,
) -> anyhow::Result<ExitCode> {
    let input = input.map_err(usage)?;
    on_mesh(args, async |client, interrupt| execute(client, task, input, render, args, interrupt).await).await
}

/// A wasm job: the modules are read and compiled here before joining (an
/// unusable one is a usage error), and the job's module is offered to the
/// workers for as long as the job runs.
async fn wasm_job(wasm: &WasmArgs, args: &RunArgs) -> anyhow::Result<ExitCode> {
    // Here only the reducer runs (this node's own pieces run in its node's sandbox).
    let sandbox = Sandbox::new(Limits::default(), 1)?;
    let prepared = wasm.prepare(&sandbox).map_err(usage)?;
    let module = Arc::new(prepared.module.clone());
    let id = ModuleId::of(&module);
    on_mesh(args, async |client, interrupt| {
        client.offer_module(module).await;
        let job = prepared.job(id, client.peer_id().to_bytes());
        let task = Wasm::for_submitting(sandbox.clone());
        let render = |_: &_, outputs: &Vec<Vec<u8>>| prepared.render(&sandbox, outputs);
        let code = execute(client, &task, job, render, args, interrupt).await;
        client.withdraw_module(id).await;
        code
    })
    .await
}

/// Joins the mesh and runs `body` with the node's client; Ctrl-C cancels
/// from the start, the node shuts down after.
async fn on_mesh(
    args: &RunArgs,
    body: impl AsyncFnOnce(&Client, &mut Interrupt) -> anyhow::Result<ExitCode>,
) -> anyhow::Result<ExitCode> {
    // From here on Ctrl-C cancels, whatever is going on.
    let mut interrupt = Interrupt::install()?;
    let node = tokio::select! {
        node = join(&args.peer, slots_or_cores(args.slots)) => node?,
        () = interrupt.pressed_once() => return Ok(cancelled()),
    };
    let code = body(&node.client(), &mut interrupt).await;
    // Also after Ctrl-C: the shutdown gives the Cancel requests their
    // moment to leave (a second Ctrl-C skips it).
    node.shutdown().await;
    code
}

/// Waits for peers, runs the job with a progress bar, prints the result;
/// Ctrl-C at any point before the result is printed cancels.
async fn execute<T: Task>(
    client: &Client,
    task: &T,
    input: T::Input,
    render: impl Fn(&T::Input, &T::Result) -> anyhow::Result<Rendered>,
    args: &RunArgs,
    interrupt: &mut Interrupt,
) -> anyhow::Result<ExitCode> {
    // On a terminal, what goes on from now on, before any piece is done.
    let status = Status::start(args.json);
    // The user waits for the peers too: the summary says the whole time.
    let began = Instant::now();
    let seen = tokio::select! {
        seen = wait_for_peers(client, T::NAME, args, &status, None) => seen.inspect_err(|_| status.clear())?,
        () = interrupt.pressed_once() => {
            status.clear();
            return Ok(cancelled());
        }
    };
    let opts = JobOptions {
        max_attempts: args.max_attempts,
        piece_timeout: args.piece_timeout(PIECE_TIMEOUT),
        stall_timeout: Duration::from_secs_f64(args.stall_timeout),
        // The status line says where pieces went, so it asks for placements.
        explain: args.explain || status.visible(),
        backups: !args.no_backups,
    };
    let names = client.names().clone();
    let on_event = |id: JobId, event: &JobEvent| {
        match event {
            JobEvent::Progress { done, total, .. } => status.progress(*done, *total),
            JobEvent::Placed { choice, pieces, backup, .. } => {
                status.placed(choice.chosen.peer, choice.chosen.slots, pieces.len(), *backup)
            }
            _ => {}
        }
        let line = if args.json {
            // Strings and integers only: serializing cannot fail.
            EventLine::of(id, event, &names, args.explain).and_then(|l| serde_json::to_string(&l).ok())
        } else {
            text_line(event, &names, args.explain)
        };
        // Printed whether or not stderr is a terminal.
        if let Some(line) = line {
            status.println(&line);
        }
    };
    let outcome = client.run_until(task, &input, &opts, on_event, interrupt.pressed_once()).await;
    status.clear();
    // Pressed while the merge held the runtime's thread: the job is done,
    // but the user asked for it not to be.
    if interrupt.pressed() {
        return Ok(cancelled());
    }
    match outcome {
        Ok((result, report)) => {
            let shown = render(&input, &result)?;
            // Pressed while rendering (a --reduce module, an image being
            // encoded) held the thread: the user asked for no result.
            if interrupt.pressed() {
                return Ok(cancelled());
            }
            let found = Found { seen, total: began.elapsed() };
            print_outcome(T::NAME, &shown, &report, &client.peer_id().to_string(), &found, args.json)?;
            Ok(ExitCode::SUCCESS)
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

/// Says so and gives the exit code of a run cancelled with Ctrl-C.
pub(super) fn cancelled() -> ExitCode {
    eprintln!("cancelled (Ctrl-C)");
    ExitCode::from(EXIT_CANCELLED)
}

/// Waits, at most `--wait`, until a `--join` address is reached (an error
/// if none is) and `--min-peers` peers run the task (an error if fewer do,
/// unless `--or-run-anyway`), and then until the peers that discovery
/// reveals stop coming (see [`settled`]): a short job started at once
/// would only use the first peers found. Says so when no other peer runs
/// the task; when this process cannot run it either (`not_here` says why
/// the job cannot run then), that is an error. Returns how many peers the
/// job can use (this process included if it has slots and runs the task).
pub(super) async fn wait_for_peers(
    client: &Client,
    task: &str,
    args: &RunArgs,
    status: &Status,
    not_here: Option<&str>,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.wait);
    let me = usize::from(args.slots != Some(0) && not_here.is_none());
    if !args.peer.net.join.is_empty() {
        reach(client, &args.peer.net.join, deadline).await?;
    }
    let alone = args.peer.net.join.is_empty() && args.peer.net.no_mdns;
    if alone && args.min_peers == 0 {
        if let Some(why) = not_here {
            anyhow::bail!("{why}: with --no-mdns and no --join this process is alone");
        }
        return Ok(me);
    }
    let want = args.min_peers.max(1);
    let mut growth = Growth::new(started);
    let found = wait_for(client, deadline, |peers| {
        let now = Instant::now();
        growth.saw(runs(peers, task), pending(peers), now);
        growth.settled(want, now)
    })
    .await?;
    let found = runs(&found, task);
    if found >= want {
        return Ok(found + me);
    }
    if let (0, Some(why)) = (found, not_here) {
        anyhow::bail!("{why}; none found after {} s", args.wait);
    }
    let seen = format!("{found} of {want} peers run {task} after {} s", args.wait);
    if args.min_peers > 0 && !args.or_run_anyway {
        anyhow::bail!("only {seen} (--min-peers {want}; --or-run-anyway starts with whoever is there)");
    }
    let message = if found == 0 {
        format!("no other peer runs {task} after {} s: running on this machine only", args.wait)
    } else {
        format!("only {seen}; starting anyway")
    };
    if args.json {
        eprintln!("{}", serde_json::json!({ "event": "warning", "message": message }));
    } else {
        status.println(&format!("warning: {message}"));
    }
    Ok(found + me)
}

/// Live peers that run `task`.
fn runs(peers: &[PeerInfo], task: &str) -> usize {
    peers.iter().filter(|p| p.is_live() && p.tasks.iter().any(|t| t == task)).count()
}

/// Peers connected whose first advert has not come yet: they may run the task.
fn pending(peers: &[PeerInfo]) -> usize {
    peers.iter().filter(|p| p.connected && p.down.is_none() && p.slots.is_none()).count()
}

/// How long the number of peers found must stay the same, with none
/// pending, before the mesh counts as found: a peer found through another
/// is dialled, connects and advertises within about one advert period.
pub(super) const SETTLE: Duration = Duration::from_millis(1200);

/// The peers found so far while waiting, and since when that number holds.
#[derive(Debug)]
struct Growth {
    found: usize,
    pending: usize,
    since: Instant,
}

impl Growth {
    fn new(now: Instant) -> Growth {
        Growth { found: 0, pending: 0, since: now }
    }

    /// `found` peers run the task and `pending` may, at `now`.
    fn saw(&mut self, found: usize, pending: usize, now: Instant) {
        if (found, pending) != (self.found, self.pending) {
            (self.found, self.pending, self.since) = (found, pending, now);
        }
    }

    /// Whether to start: `want` peers run the task, none is pending, and
    /// that has held for [`SETTLE`].
    fn settled(&self, want: usize, now: Instant) -> bool {
        self.found >= want && self.pending == 0 && now.duration_since(self.since) >= SETTLE
    }
}

/// A job event in words, or None for events shown otherwise (progress is
/// the status line; the end is the result) or not asked for (placements
/// and unplaceable pieces need `explain`).
fn text_line(event: &JobEvent, names: &PeerNames, explain: bool) -> Option<String> {
    let name = |k: PeerKey| short(&names.name(k));
    match event {
        JobEvent::Retried { piece, peer, cause, .. } => {
            Some(format!("piece {piece} failed on {}: {cause}; retrying elsewhere", name(*peer)))
        }
        JobEvent::Refused { peer, reason, .. } => Some(format!("{} {reason}", name(*peer))),
        JobEvent::Placed { pieces, choice, backup, .. } if explain => {
            let load = |c: &Candidate| format!("{} {}/{}", name(c.peer), c.load, c.slots);
            let others: Vec<String> =
                choice.considered.iter().filter(|c| c.peer != choice.chosen.peer).map(load).collect();
            Some(format!(
                "{}{} → {} (load {}/{}){}",
                if *backup { "backup of " } else { "" },
                describe_pieces(pieces),
                name(choice.chosen.peer),
                choice.chosen.load,
                choice.chosen.slots,
                if others.is_empty() { String::new() } else { format!("; weighed against {}", others.join(", ")) }
            ))
        }
        JobEvent::Unplaceable { piece, why, .. } if explain => {
            Some(format!("piece {piece} cannot be placed: {}", why.describe(&name)))
        }
        _ => None,
    }
}

/// A job event as `--json` prints it on stderr: one object per line,
/// `event` naming its kind, peers by full peer id.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum EventLine {
    /// A batch went to `peer` (with `--explain`).
    Placed {
        job: String,
        peer: String,
        pieces: Vec<u32>,
        /// A speculative copy of a straggler.
        backup: bool,
        /// The chosen peer's load and slots as placement saw them.
        load: u32,
        slots: u32,
        /// Every candidate weighed, the chosen one included.
        considered: Vec<CandidateLine>,
    },
    /// A piece failed on `peer` and goes elsewhere.
    Retried { job: String, piece: u32, peer: String, cause: String },
    /// `peer` refused the job's pieces for a reason other than being busy.
    Refused { job: String, peer: String, reason: String },
    /// No peer can take `piece` now (with `--explain`).
    Unplaceable { job: String, piece: u32, why: String, reasons: Vec<ReasonLine> },
    /// Pieces done so far (with `--explain`).
    Progress { job: String, done: u32, total: u32 },
}

/// A peer weighed for a placement.
#[derive(Debug, Serialize)]
struct CandidateLine {
    peer: String,
    load: u32,
    slots: u32,
}

/// One reason no peer can take a piece, and the peers it applies to.
#[derive(Debug, Serialize)]
struct ReasonLine {
    reason: String,
    peers: Vec<String>,
}

impl EventLine {
    /// The line for `event`, or None for events not printed (placements,
    /// unplaceable pieces and progress need `explain`; the end is the result).
    fn of(id: JobId, event: &JobEvent, names: &PeerNames, explain: bool) -> Option<EventLine> {
        let job = id.to_string();
        let name = |k: PeerKey| names.name(k);
        let candidate = |c: &Candidate| CandidateLine { peer: name(c.peer), load: c.load, slots: c.slots };
        Some(match event {
            JobEvent::Placed { pieces, choice, backup, .. } if explain => EventLine::Placed {
                job,
                peer: name(choice.chosen.peer),
                pieces: pieces.clone(),
                backup: *backup,
                load: choice.chosen.load,
                slots: choice.chosen.slots,
                considered: choice.considered.iter().map(candidate).collect(),
            },
            JobEvent::Retried { piece, peer, cause, .. } => {
                EventLine::Retried { job, piece: *piece, peer: name(*peer), cause: cause.to_string() }
            }
            JobEvent::Refused { peer, reason, .. } => {
                EventLine::Refused { job, peer: name(*peer), reason: reason.to_string() }
            }
            JobEvent::Unplaceable { piece, why, .. } if explain => EventLine::Unplaceable {
                job,
                piece: *piece,
                why: why.describe(&name),
                reasons: why
                    .reasons
                    .iter()
                    .map(|(reason, peers)| ReasonLine {
                        reason: reason.clone(),
                        peers: peers.iter().map(|p| name(*p)).collect(),
                    })
                    .collect(),
            },
            JobEvent::Progress { done, total, .. } if explain => {
                EventLine::Progress { job, done: *done, total: *total }
            }
            _ => return None,
        })
    }
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

/// What the run itself saw, besides the job's report: the peers the job
/// could use when it started, and the time from the start of the wait for
/// peers to the result.
struct Found {
    seen: usize,
    total: Duration,
}

/// Prints the result on stdout and the summary on stderr (with `json`,
/// both as one object on stdout).
fn print_outcome(
    task: &str,
    shown: &Rendered,
    report: &JobReport,
    me: &str,
    found: &Found,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let mut summary = serde_json::to_value(report)?;
        summary["peers_seen"] = found.seen.max(used(report)).into();
        summary["peers_used"] = used(report).into();
        summary["total_s"] = found.total.as_secs_f64().into();
        let value = serde_json::json!({ "task": task, "result": shown.json, "summary": summary });
        println!("{value}");
        return Ok(());
    }
    println!("{}", shown.text);
    eprintln!("{}", summary_line(report, me, found));
    Ok(())
}

/// Peers that ran pieces of the job.
fn used(report: &JobReport) -> usize {
    report.pieces_per_peer.iter().filter(|(_, n)| *n > 0).count()
}

/// The summary of a job for people: its duration as they write one,
/// pieces per peer (this process as "this machine") adding up to the
/// job's pieces (those no peer ran, when a job ends early, are counted
/// too), the whole time with the wait for peers, and how many of the peers
/// seen at the start ran pieces.
fn summary_line(report: &JobReport, me: &str, found: &Found) -> String {
    let name = |p: &str| if p == me { "this machine".to_string() } else { short(p) };
    let mut per_peer: Vec<String> = report.pieces_per_peer.iter().map(|(p, n)| format!("{} {n}", name(p))).collect();
    let ran: u32 = report.pieces_per_peer.iter().map(|(_, n)| n).sum();
    if ran < report.pieces {
        per_peer.push(format!("not run {} (the job ended early)", report.pieces - ran));
    }
    let modules = match report.modules_sent {
        Some(m) => format!(" · module sent {} times ({:.1} MB)", m.count, m.bytes as f64 / 1e6),
        None => String::new(),
    };
    format!(
        "{} pieces in {} ({} with the wait for peers) · per peer: {} · peers used {} of {} seen · retries {} · backups {} ({} won) · duplicates ignored {}{modules}",
        report.pieces,
        human(Duration::from_secs_f64(report.wall_s)),
        human(found.total),
        per_peer.join(", "),
        used(report),
        // A peer that came during the job was seen too.
        found.seen.max(used(report)),
        report.retries,
        report.backups,
        report.backups_won,
        report.duplicates_ignored
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(wall_s: f64, pieces: u32, per_peer: &[(&str, u32)]) -> JobReport {
        JobReport {
            job: "j".into(),
            pieces,
            wall_s,
            pieces_per_peer: per_peer.iter().map(|(p, n)| (p.to_string(), *n)).collect(),
            retries: 1,
            backups: 2,
            backups_won: 1,
            overdue_batches: 0,
            duplicates_ignored: 0,
            unsolicited: 0,
            rejections: 0,
            batches: 3,
            exec_s: 0.0,
            modules_sent: None,
        }
    }

    #[test]
    fn the_wait_for_peers_ends_once_their_number_stops_growing() {
        let (t0, ms) = (Instant::now(), Duration::from_millis);
        let mut g = Growth::new(t0);
        g.saw(1, 2, t0 + ms(100));
        assert!(!g.settled(1, t0 + ms(5000)), "two peers connected have not advertised yet");
        g.saw(3, 0, t0 + ms(900));
        g.saw(3, 0, t0 + ms(1000));
        assert!(!g.settled(1, t0 + ms(900) + SETTLE - ms(1)), "a fourth may still come");
        assert!(g.settled(1, t0 + ms(900) + SETTLE));
        assert!(!g.settled(4, t0 + ms(9000)), "--min-peers 4 with 3 there");
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn the_summary_reads_as_people_write_and_its_counts_add_up() {
        let (me, other) = ("12D3KooWMe000000000000", "12D3KooWOther0000abcd1234");
        assert_eq!(
            summary_line(&report(10.046471, 8, &[(other, 5), (me, 3)]), me, &Found { seen: 3, total: secs(11.5) }),
            "8 pieces in 10.0 s (11.5 s with the wait for peers) · per peer: …abcd1234 5, this machine 3 · peers used 2 of 3 seen · retries 1 · backups 2 (1 won) · duplicates ignored 0"
        );
        let early = summary_line(&report(0.25, 64, &[(other, 10)]), me, &Found { seen: 0, total: secs(1.3) });
        assert!(
            early.starts_with("64 pieces in 250 ms (1.3 s with the wait for peers) · per peer: …abcd1234 10, not run 54 (the job ended early) ·"),
            "{early}"
        );
    }
}
