//! A `meshwork run --json` process: its job events (stderr, typed, stamped
//! with their arrival) while it runs, and once it ends a [`RunOutput`]
//! with the result and the summary's counters.

use crate::events::{JobEvent, Stamped};
use crate::node_proc::short;
use crate::procs::{dump, Proc, Spawn, Stderr, Stream};
use std::time::{Duration, Instant};

/// A `meshwork run --json` process (its stderr captured).
pub struct RunProc {
    /// The process.
    pub proc: Proc,
    /// Who it is in failure messages ("meshwork run on host 0").
    pub label: String,
    /// When it was started.
    pub started: Instant,
    /// Every job event it printed so far.
    pub events: Vec<Stamped<JobEvent>>,
    /// Lines of `proc.log` already parsed into `events`.
    parsed: usize,
}

impl RunProc {
    /// Starts `meshwork <args>` (`args` beginning with `run` and holding
    /// `--json`) as `how` says, its stderr captured.
    pub fn spawn(how: Spawn, label: String, args: &[&str]) -> RunProc {
        assert!(args.contains(&"--json"), "RunProc reads the JSON events: {args:?}");
        let proc = Proc::spawn(&Spawn { stderr: Stderr::Pipe, ..how }, args);
        RunProc { proc, label, started: Instant::now(), events: Vec::new(), parsed: 0 }
    }

    /// Starts `meshwork run --json --explain` on loopback, submitting only
    /// (`--slots 0`, mDNS off) through `join`; `args` are more options and
    /// the task with its arguments.
    pub fn start_local(join: &str, args: &[&str]) -> RunProc {
        RunProc::start_local_as(join, Local::default(), args)
    }

    /// Starts `meshwork run --json` on loopback (mDNS off) through `join`,
    /// as `how` says; `args` are more options and the task with its arguments.
    pub fn start_local_as(join: &str, how: Local, args: &[&str]) -> RunProc {
        let slots = how.slots.to_string();
        let mut all =
            vec!["run", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--join", join, "--slots", &slots, "--json"];
        if how.explain {
            all.push("--explain");
        }
        all.extend(["--wait", "30"]);
        all.extend_from_slice(args);
        RunProc::spawn(Spawn { die_with_parent: true, ..Spawn::default() }, "meshwork run".into(), &all)
    }

    /// Takes the lines printed so far and parses the new ones.
    pub fn pump(&mut self) {
        self.proc.pump();
        self.parse_new();
    }

    fn parse_new(&mut self) {
        for line in &self.proc.log[self.parsed..] {
            if let (Stream::Stderr, Some(event)) = (line.stream, JobEvent::parse(&line.text)) {
                self.events.push(Stamped { at: line.at, event });
            }
        }
        self.parsed = self.proc.log.len();
    }

    /// Waits for an event that `matches`, arrived at or after `after`
    /// (already printed or new).
    pub fn wait_event(
        &mut self,
        what: &str,
        after: Instant,
        timeout: Duration,
        matches: impl Fn(&JobEvent) -> bool,
    ) -> anyhow::Result<Stamped<JobEvent>> {
        self.pump();
        if let Some(e) = self.events.iter().find(|e| e.at >= after && matches(&e.event)) {
            return Ok(e.clone());
        }
        let line = self.proc.wait_for(what, timeout, |l| {
            l.stream == Stream::Stderr && JobEvent::parse(&l.text).is_some_and(|e| matches(&e))
        })?;
        self.parse_new();
        Ok(Stamped { at: line.at, event: JobEvent::parse(&line.text).expect("matched above") })
    }

    /// Waits for pieces placed (not as a backup) on `peer` at or after `after`.
    pub fn wait_placed_on(
        &mut self,
        peer: &str,
        after: Instant,
        timeout: Duration,
    ) -> anyhow::Result<Stamped<JobEvent>> {
        let what = format!("pieces placed on {}", short(peer));
        self.wait_event(
            &what,
            after,
            timeout,
            |e| matches!(e, JobEvent::Placed { peer: p, backup: false, .. } if p == peer),
        )
    }

    /// Waits until the process ends; its exit code, JSON and events.
    pub fn finish(&mut self, timeout: Duration) -> anyhow::Result<RunOutput> {
        let (code, out) = self.proc.output(timeout)?;
        self.parse_new();
        let ended = self.proc.log.last().map_or_else(Instant::now, |l| l.at);
        let json = out
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(serde_json::Value::Null);
        let stderr = self.proc.log.iter().filter(|l| l.stream == Stream::Stderr).map(|l| l.text.clone()).collect();
        Ok(RunOutput { code, json, events: self.events.clone(), stderr, took: ended.duration_since(self.started) })
    }
}

impl Drop for RunProc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.proc.pump();
            dump(&self.label, &self.proc.log);
        }
    }
}

/// How [`RunProc::start_local_as`] starts a run.
#[derive(Clone, Copy, Debug)]
pub struct Local {
    /// Its `--slots` (0: it only submits).
    pub slots: u32,
    /// With `--explain`: placements and progress among its events.
    pub explain: bool,
}

impl Default for Local {
    fn default() -> Local {
        Local { slots: 0, explain: true }
    }
}

/// What a finished `meshwork run --json` gave.
#[derive(Debug)]
pub struct RunOutput {
    /// Exit code.
    pub code: i32,
    /// The JSON object it printed (Null if none).
    pub json: serde_json::Value,
    /// Its job events.
    pub events: Vec<Stamped<JobEvent>>,
    /// Its stderr lines, for failure messages.
    pub stderr: Vec<String>,
    /// From start to its last line of output.
    pub took: Duration,
}

impl RunOutput {
    /// `result.<key>` as an integer.
    pub fn result(&self, key: &str) -> Option<u64> {
        self.json["result"][key].as_u64()
    }

    /// `summary.<key>` as an integer.
    pub fn summary(&self, key: &str) -> Option<u64> {
        self.json["summary"][key].as_u64()
    }

    /// `summary.wall_s`.
    pub fn wall_s(&self) -> f64 {
        self.json["summary"]["wall_s"].as_f64().unwrap_or(f64::NAN)
    }

    /// `summary.pieces_per_peer` as (peer id, pieces).
    pub fn per_peer(&self) -> Vec<(String, u64)> {
        let rows = self.json["summary"]["pieces_per_peer"].as_array().cloned().unwrap_or_default();
        rows.iter().filter_map(|r| Some((r[0].as_str()?.to_string(), r[1].as_u64()?))).collect()
    }

    /// Pieces `peer` completed (0 if none).
    pub fn pieces_of(&self, peer: &str) -> u64 {
        self.per_peer().iter().find(|(p, _)| p == peer).map_or(0, |(_, n)| *n)
    }

    /// Every retry of a piece that failed on `peer`: (when, piece, cause).
    pub fn retried_on(&self, peer: &str) -> Vec<(Instant, u32, String)> {
        let on = |e: &Stamped<JobEvent>| match &e.event {
            JobEvent::Retried { piece, peer: p, cause } if p == peer => Some((e.at, *piece, cause.clone())),
            _ => None,
        };
        self.events.iter().filter_map(on).collect()
    }

    /// Every retry, on any peer: (when, piece, peer, cause).
    pub fn retries(&self) -> Vec<(Instant, u32, String, String)> {
        let any = |e: &Stamped<JobEvent>| match &e.event {
            JobEvent::Retried { piece, peer, cause } => Some((e.at, *piece, peer.clone(), cause.clone())),
            _ => None,
        };
        self.events.iter().filter_map(any).collect()
    }

    /// Pieces placed on `peer` (not as backups) at or after `after`.
    pub fn placed_on_after(&self, peer: &str, after: Instant) -> u64 {
        let on = |e: &&Stamped<JobEvent>| {
            e.at >= after && matches!(&e.event, JobEvent::Placed { peer: p, backup: false, .. } if p == peer)
        };
        let count = |e: &Stamped<JobEvent>| match &e.event {
            JobEvent::Placed { pieces, .. } => pieces.len() as u64,
            _ => 0,
        };
        self.events.iter().filter(on).map(count).sum()
    }

    /// Every stderr line, for failure messages.
    pub fn stderr_text(&self) -> String {
        self.stderr.join("\n")
    }

    /// Panics (with its output) unless it exited 0 with every piece counted
    /// exactly once: per-peer counts adding up to `pieces`, the summary
    /// saying `pieces`, and no result for a piece never given.
    pub fn assert_exact(&self, pieces: u64) {
        assert_eq!(self.code, 0, "meshwork run failed: {}\n{}", self.json, self.stderr_text());
        let sum: u64 = self.per_peer().iter().map(|(_, n)| n).sum();
        assert_eq!(sum, pieces, "pieces per peer add up to the job's pieces: {}", self.json);
        assert_eq!(self.summary("pieces"), Some(pieces), "{}", self.json);
        assert_eq!(self.summary("unsolicited"), Some(0), "results for pieces never given: {}", self.json);
    }
}
