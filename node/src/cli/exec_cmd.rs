//! `meshwork run exec`: GNU parallel's command line over the mesh. The
//! inputs become command lines here; the pieces run on the nodes started
//! with `--allow-exec`; outputs are printed whole, per command, in input
//! order (or as they finish), never interleaved.

use super::checks;
use super::interrupt::Interrupt;
use super::progress::Status;
use super::run_cmd::{cancelled, wait_for_peers, RunArgs};
use crate::client::Client;
use crate::exec::halt::{Count, Halt};
use crate::exec::joblog::{self, Joblog};
use crate::exec::placeholders::expand;
use crate::exec::task::MAX_OUTPUT_CAP;
use crate::exec::{Exec, ExecOutput, ExecPiece};
use anyhow::{bail, Context};
use meshwork_protocol::task::{decode_outputs, encode_pieces, Task};
use meshwork_protocol::{JobEvent, JobId, JobSpec, PeerKey};
use serde_bytes::ByteBuf;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Exit code when the mesh could not run the job at all (as parallel's 255).
const EXIT_NOT_RUN: u8 = 255;

/// Run a command for each input on the nodes that allow it (`meshwork node
/// --allow-exec`), like GNU parallel.
#[derive(clap::Args, Debug, Clone)]
#[command(after_long_help = "Inputs and command, as with GNU parallel:
  meshwork run exec ::: a.flac b.flac -- flac -d {}
  meshwork run exec flac -d {} ::: a.flac b.flac
  find . -name '*.jpg' | meshwork run exec --stdin -- identify {}
  meshwork run exec --lines urls.txt -- ./check.sh {}
Replacement strings: {} the input, {#} its number (from 1), {.} without
extension, {/} basename, {//} directory, {/.} basename without extension.
A command with none gets the input as its last argument. No shell is run
unless you run one (sh -c 'SCRIPT'); in such a SCRIPT inputs are quoted.

Each command runs on one node, in a fresh directory, with only PATH,
MESHWORK_PIECE (its number), MESHWORK_JOB and the --env variables set. Its
stdout goes to stdout and its stderr to stderr, whole, in input order.

Exit code: 0 all succeeded; 1-100 that many failed; 101 more failed; \
255 the mesh could not run them (every node refused them); 2 bad arguments; \
3 no mesh, or no node in it allows exec; 130 Ctrl-C (running commands are killed).")]
pub(super) struct ExecArgs {
    /// Inputs from the lines of FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "stdin")]
    lines: Option<PathBuf>,
    /// Inputs from standard input's lines.
    #[arg(long)]
    stdin: bool,
    /// Print each command's output when it finishes, not in input order.
    #[arg(long)]
    no_keep_order: bool,
    /// Print outputs in input order (the default).
    #[arg(long, conflicts_with = "no_keep_order")]
    keep_order: bool,
    /// Write GNU parallel's joblog (one line per command) to FILE.
    #[arg(long, value_name = "FILE")]
    joblog: Option<PathBuf>,
    /// Run a command that fails (non-zero exit) again up to N times, on
    /// another node when there is one.
    #[arg(long, default_value_t = 0, value_name = "N")]
    retries: u32,
    /// Stop early: now,fail=N, soon,fail=N%, now,success=N (running commands are killed).
    #[arg(long, value_name = "WHEN", value_parser = |s: &str| Halt::parse(s).map(HaltArg))]
    halt: Option<HaltArg>,
    /// Kill a command (its whole process group) after SECS.
    #[arg(long, value_name = "SECS", value_parser = checks::positive_secs)]
    timeout: Option<f64>,
    /// Bytes of each command's stdout, and of its stderr, kept (the rest is dropped, with a note).
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(1..=MAX_OUTPUT_CAP))]
    max_output: u64,
    /// Pass this variable of this environment to the commands (repeatable).
    #[arg(long = "env", value_name = "NAME")]
    env: Vec<String>,
    /// `::: INPUTS... -- COMMAND...`, `COMMAND... ::: INPUTS...`, or `-- COMMAND...` with --lines/--stdin.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "COMMAND")]
    words: Vec<String>,
}

/// `--halt`'s value (`never` is `None`).
#[derive(Clone, Debug)]
struct HaltArg(Option<Halt>);

/// What the command line asks for, checked before joining.
#[derive(Debug)]
pub(super) struct ExecRun {
    pieces: Vec<ExecPiece>,
    keep_order: bool,
    joblog: Option<PathBuf>,
    retries: u32,
    halt: Option<Halt>,
    /// Piece deadline for the scheduler: past a command's own timeout.
    piece_timeout: Option<Duration>,
}

impl ExecArgs {
    /// Builds every command line (an error is a usage error).
    pub(super) fn prepare(&self, json: bool) -> anyhow::Result<ExecRun> {
        if json {
            bail!("exec prints its commands' own output, not JSON: use --joblog FILE for a record of each");
        }
        let (inputs, command) = self.inputs_and_command()?;
        if command.is_empty() {
            bail!("no command: give one after --, e.g. meshwork run exec ::: a b -- echo {{}}");
        }
        if inputs.is_empty() {
            bail!("no inputs: give them after :::, or with --lines FILE or --stdin");
        }
        let env = self
            .env
            .iter()
            .map(|name| {
                std::env::var(name).map(|v| (name.clone(), v)).with_context(|| format!("--env {name}: not set here"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let job = format!("{:016x}", rand::random::<u64>());
        let timeout_ms = self.timeout.map_or(0, |t| (t * 1000.0).ceil() as u64);
        let pieces = (inputs.iter().enumerate())
            .map(|(i, input)| ExecPiece {
                argv: expand(&command, input, i as u64 + 1),
                seq: i as u64 + 1,
                job: job.clone(),
                env: env.clone(),
                timeout_ms,
                max_output: self.max_output,
                avoid: Vec::new(),
            })
            .collect();
        Ok(ExecRun {
            pieces,
            keep_order: !self.no_keep_order,
            joblog: self.joblog.clone(),
            retries: self.retries,
            halt: self.halt.as_ref().and_then(|h| h.0),
            piece_timeout: self.timeout.map(|t| Duration::from_secs_f64(t) + Duration::from_secs(60)),
        })
    }

    /// The inputs, and the command's words.
    fn inputs_and_command(&self) -> anyhow::Result<(Vec<String>, Vec<String>)> {
        let words = &self.words;
        let marker = words.iter().position(|w| w == ":::");
        let from_words = match marker {
            // ::: INPUTS -- COMMAND
            Some(0) => {
                let end = words.iter().position(|w| w == "--").unwrap_or(words.len());
                let command = words.get(end + 1..).unwrap_or_default().to_vec();
                Some((words[1..end].to_vec(), command))
            }
            // COMMAND ::: INPUTS
            Some(at) => Some((words[at + 1..].to_vec(), words[..at].to_vec())),
            None => None,
        };
        let command = |c: Vec<String>| if c.first().is_some_and(|w| w == "--") { c[1..].to_vec() } else { c };
        match (from_words, &self.lines, self.stdin) {
            (Some(_), Some(_), _) | (Some(_), _, true) => {
                bail!("give inputs after ::: or with --lines/--stdin, not both")
            }
            (Some((inputs, c)), None, false) => Ok((inputs, command(c))),
            (None, Some(path), false) => {
                let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                Ok((lines_of(&text[..])?, command(words.clone())))
            }
            (None, None, true) => Ok((lines_of(std::io::stdin().lock())?, command(words.clone()))),
            _ => bail!("say what the inputs are: ::: INPUTS..., --lines FILE or --stdin"),
        }
    }
}

/// The lines of `from`, without their line ends.
fn lines_of(from: impl BufRead) -> anyhow::Result<Vec<String>> {
    from.lines().collect::<Result<_, _>>().context("reading inputs (they must be UTF-8 text)")
}

/// Runs the commands: a job of them all, streamed; failures retried as
/// jobs of their own; outputs printed as `run` says.
pub(super) async fn execute(
    client: &Client,
    run: &ExecRun,
    args: &RunArgs,
    interrupt: &mut Interrupt,
) -> anyhow::Result<ExitCode> {
    let status = Status::start(args.json());
    let hint = "no peer allows exec (start nodes with --allow-exec)";
    let seen = tokio::select! {
        seen = wait_for_peers(client, Exec::NAME, args, &status, Some(hint)) => seen.inspect_err(|_| status.clear())?,
        () = interrupt.pressed_once() => {
            status.clear();
            return Ok(cancelled());
        }
    };
    let mut joblog = match &run.joblog {
        Some(path) => Some(Joblog::create(path).with_context(|| format!("creating {}", path.display()))?),
        None => None,
    };
    let (tx, mut events) = mpsc::unbounded_channel();
    let mut out = Printer::new(run);
    let main = submit(client, run, run.pieces.clone(), args, &tx).await?;
    let mut retrying: HashMap<JobId, u64> = HashMap::new();
    let mut last_failure: HashMap<u64, (PeerKey, ExecOutput)> = HashMap::new();
    let mut tries: HashMap<u64, u32> = HashMap::new();
    let mut main_done = false;
    let started = Instant::now();
    let outcome: Result<(), String> = loop {
        if main_done && retrying.is_empty() {
            break Ok(());
        }
        let (job, event) = tokio::select! {
            e = events.recv() => e.expect("this function holds a sender"),
            () = interrupt.pressed_once() => {
                for job in std::iter::once(main).chain(retrying.keys().copied()) {
                    client.cancel(job).await;
                }
                status.clear();
                return Ok(cancelled());
            }
        };
        match event {
            JobEvent::Progress { done, total, .. } if job == main => status.progress(done, total),
            JobEvent::Placed { choice, pieces, backup, .. } if job == main => {
                status.placed(choice.chosen.peer, choice.chosen.slots, pieces.len(), backup)
            }
            JobEvent::Output { piece, peer, output, .. } => {
                let piece = match retrying.get(&job) {
                    Some(seq) => seq - 1,
                    None => u64::from(piece),
                };
                let output = decode_outputs::<Exec>(&[output])
                    .map_err(|e| anyhow::anyhow!("a peer sent back an unreadable result: {e}"))?
                    .remove(0);
                let seq = piece + 1;
                let tried = tries.entry(seq).or_insert(0);
                if !output.succeeded() && *tried < run.retries {
                    *tried += 1;
                    let mut again = run.pieces[piece as usize].clone();
                    again.avoid = avoid(client, &last_failure, seq, peer).await;
                    last_failure.insert(seq, (peer, output));
                    let id = submit(client, run, vec![again], args, &tx).await?;
                    retrying.insert(id, seq);
                    continue;
                }
                let host = format!("{}:{}", output.host, client.names().name(peer));
                if let Some(log) = &mut joblog {
                    log.write(&joblog::line(seq, &host, &run.pieces[piece as usize].argv, &output))
                        .context("writing the joblog")?;
                }
                out.done(piece as usize, output, &status);
                if run.halt.is_some_and(|h| h.reached(out.failed, out.succeeded)) {
                    for job in std::iter::once(main).chain(retrying.keys().copied()) {
                        client.cancel(job).await;
                    }
                    break Err(format!("halted (--halt {})", run.halt.expect("checked")));
                }
            }
            JobEvent::Finished { result, .. } => {
                if job == main {
                    main_done = true;
                    if let Err(e) = result {
                        for job in retrying.keys() {
                            client.cancel(*job).await;
                        }
                        break Err(e.describe(&|k| client.names().name(k)));
                    }
                } else if let Some(seq) = retrying.remove(&job) {
                    // The retry could not run anywhere: its last failure stands.
                    if let (Err(_), Some((_, output))) = (result, last_failure.remove(&seq)) {
                        out.done(seq as usize - 1, output, &status);
                    }
                }
            }
            _ => {}
        }
    };
    status.clear();
    out.flush_all();
    let failed = out.failed;
    eprintln!(
        "exec: {} commands, {} failed, {} not run, on {} peers in {:.1} s",
        run.pieces.len(),
        failed,
        out.not_run(),
        seen,
        started.elapsed().as_secs_f64()
    );
    match outcome {
        Ok(()) => Ok(ExitCode::from(failed.min(101) as u8)),
        Err(why) if out.halted_on_fail(run.halt) => {
            eprintln!("{why}");
            Ok(ExitCode::from(out.last_fail_code.unwrap_or(1)))
        }
        Err(why) if run.halt.is_some_and(|h| h.on == Count::Success) && out.succeeded > 0 => {
            eprintln!("{why}");
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => {
            eprintln!("error: {why}");
            Ok(ExitCode::from(EXIT_NOT_RUN))
        }
    }
}

/// Where a retry must not go: every peer that failed it, unless that
/// leaves no peer that runs commands (then anywhere, as parallel does on one host).
async fn avoid(client: &Client, last: &HashMap<u64, (PeerKey, ExecOutput)>, seq: u64, peer: PeerKey) -> Vec<ByteBuf> {
    let mut failed_on = vec![peer];
    failed_on.extend(last.get(&seq).map(|(p, _)| *p));
    let ids: Vec<_> = failed_on.iter().filter_map(|k| client.names().id(*k)).collect();
    let peers = client.peers().await.unwrap_or_default();
    let others = peers
        .iter()
        .filter(|p| {
            p.is_live() && p.tasks.iter().any(|t| t == Exec::NAME) && !ids.iter().any(|id| id.to_string() == p.peer_id)
        })
        .count();
    if others == 0 {
        return Vec::new();
    }
    ids.iter().map(|id| ByteBuf::from(id.to_bytes())).collect()
}

/// Submits `pieces` as one streamed job whose events go to `tx`.
async fn submit(
    client: &Client,
    run: &ExecRun,
    pieces: Vec<ExecPiece>,
    args: &RunArgs,
    tx: &mpsc::UnboundedSender<(JobId, JobEvent)>,
) -> anyhow::Result<JobId> {
    let mut spec = JobSpec::new(Exec::NAME, encode_pieces::<Exec>(&pieces));
    args.apply(&mut spec, run.piece_timeout.unwrap_or(Duration::from_secs(24 * 3600)));
    // A command may have effects: a backup copy would run it twice at once.
    spec.backups = false;
    spec.stream = true;
    spec.explain = true;
    let (id, mut rx) = client.submit(spec).await?;
    let tx = tx.clone();
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if tx.send((id, e)).is_err() {
                break;
            }
        }
    });
    Ok(id)
}

/// Prints outputs whole, in input order or as they come, and counts.
struct Printer {
    keep_order: bool,
    /// Outputs waiting for an earlier one (keep order).
    waiting: BTreeMap<usize, ExecOutput>,
    next: usize,
    total: usize,
    failed: u64,
    succeeded: u64,
    last_fail_code: Option<u8>,
}

impl Printer {
    fn new(run: &ExecRun) -> Printer {
        Printer {
            keep_order: run.keep_order,
            waiting: BTreeMap::new(),
            next: 0,
            total: run.pieces.len(),
            failed: 0,
            succeeded: 0,
            last_fail_code: None,
        }
    }

    /// Piece `i` ended for good with `output`.
    fn done(&mut self, i: usize, output: ExecOutput, status: &Status) {
        if output.succeeded() {
            self.succeeded += 1;
        } else {
            self.failed += 1;
            self.last_fail_code = Some(output.exit.clamp(1, 255) as u8);
        }
        if !self.keep_order {
            status.suspend(|| print(i, &output));
            return;
        }
        self.waiting.insert(i, output);
        status.suspend(|| {
            while let Some(output) = self.waiting.remove(&self.next) {
                print(self.next, &output);
                self.next += 1;
            }
        });
    }

    /// After a halt or a failed job: what is waiting, in order, even past gaps.
    fn flush_all(&mut self) {
        for (i, output) in std::mem::take(&mut self.waiting) {
            print(i, &output);
        }
    }

    fn not_run(&self) -> u64 {
        self.total as u64 - self.failed - self.succeeded
    }

    fn halted_on_fail(&self, halt: Option<Halt>) -> bool {
        halt.is_some_and(|h| h.on == Count::Fail && h.reached(self.failed, self.succeeded))
    }
}

/// Writes piece `i`'s stdout and stderr, then notes on what was cut or killed.
fn print(i: usize, o: &ExecOutput) {
    let seq = i + 1;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&o.stdout);
    let _ = stdout.flush();
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(&o.stderr);
    for (stream, kept, dropped) in
        [("stdout", o.stdout.len(), o.stdout_dropped), ("stderr", o.stderr.len(), o.stderr_dropped)]
    {
        if dropped > 0 {
            let _ = writeln!(
                stderr,
                "meshwork: command {seq}: {stream} cut after {kept} bytes, {dropped} more dropped (--max-output)"
            );
        }
    }
    if o.timed_out {
        let _ = writeln!(
            stderr,
            "meshwork: command {seq} timed out after {:.1} s and was killed (--timeout)",
            o.runtime_ms as f64 / 1000.0
        );
    } else if o.signal != 0 {
        let _ = writeln!(stderr, "meshwork: command {seq} was killed by signal {}", o.signal);
    }
}
