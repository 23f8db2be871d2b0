//! The `exec` task: a piece is one command line; the worker runs it under
//! its owner's policy and sends back what it printed and how it ended.
//!
//! Only a node started with `--allow-exec` registers this task, so only
//! such nodes advertise it and get its pieces.

use super::process::{self, Spawn};
use meshwork_protocol::task::{CancelFlag, Task, TaskError};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// Largest `--max-output`: stdout and stderr both at this cap still fit a
/// message (see [`crate::tasks::MAX_PIECE_BYTES`]).
pub const MAX_OUTPUT_CAP: u64 = 3 * 1024 * 1024;

/// One command, as it travels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecPiece {
    /// The command: program then arguments, placeholders already replaced.
    pub argv: Vec<String>,
    /// Its 1-based sequence number (`{#}`, `MESHWORK_PIECE`).
    pub seq: u64,
    /// The job's id (`MESHWORK_JOB`).
    pub job: String,
    /// Variables the submitter passes (`--env NAME`).
    pub env: Vec<(String, String)>,
    /// Kill it after this many ms (0: no limit but the piece's deadline).
    pub timeout_ms: u64,
    /// Bytes of stdout, and of stderr, sent back.
    pub max_output: u64,
    /// Peers (ids as bytes) that ran it before (`--retries`): they pass
    /// it on, so a retry runs elsewhere.
    pub avoid: Vec<ByteBuf>,
}

/// How a command ended, as it travels back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOutput {
    /// The worker's host name.
    pub host: String,
    /// Start, in ms since the Unix epoch.
    pub start_ms: u64,
    /// Run time in ms.
    pub runtime_ms: u64,
    /// Exit code; -1 when a signal ended it.
    pub exit: i32,
    /// The signal that ended it, 0 if none.
    pub signal: i32,
    /// Killed after `--timeout`.
    pub timed_out: bool,
    /// Its stdout, up to `max_output` bytes.
    pub stdout: ByteBuf,
    /// Its stderr, likewise.
    pub stderr: ByteBuf,
    /// Bytes of stdout dropped past the cap.
    pub stdout_dropped: u64,
    /// Bytes of stderr dropped past the cap.
    pub stderr_dropped: u64,
}

impl ExecOutput {
    /// What a shell reports for a program it cannot find: exit code 127.
    fn not_found(host: &str, why: String) -> ExecOutput {
        ExecOutput {
            host: host.to_string(),
            start_ms: std::time::SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            runtime_ms: 0,
            exit: 127,
            signal: 0,
            timed_out: false,
            stdout: ByteBuf::new(),
            stderr: ByteBuf::from(format!("{why}\n").into_bytes()),
            stdout_dropped: 0,
            stderr_dropped: 0,
        }
    }

    /// Exit 0, no signal.
    pub fn succeeded(&self) -> bool {
        self.exit == 0 && self.signal == 0
    }
}

/// What a node's owner allows (`meshwork node --allow-exec ...`).
#[derive(Clone, Debug, Default)]
pub struct ExecPolicy {
    /// Only these programs, if given (`--exec-allow`): the files they are
    /// (symbolic links resolved), so another spelling of one is the same.
    pub allow: Option<Vec<PathBuf>>,
    /// Run commands as this uid and gid (`--exec-user`).
    pub user: Option<(u32, u32)>,
    /// Run commands here instead of a fresh temporary directory (`--exec-dir`).
    pub dir: Option<PathBuf>,
    /// The worker's PATH, used to find programs and given to them.
    pub path: String,
}

/// The task, with the node's policy.
#[derive(Clone, Debug)]
pub struct Exec {
    policy: ExecPolicy,
    /// This node's peer id, as bytes (to honour [`ExecPiece::avoid`]).
    me: Vec<u8>,
    host: String,
}

impl Exec {
    /// The task as node `me` (peer id bytes) runs it under `policy`.
    pub fn new(policy: ExecPolicy, me: Vec<u8>) -> Exec {
        Exec { policy, me, host: host_name() }
    }

    /// The task as a submitter uses it (to split and merge only).
    pub fn for_submitting() -> Exec {
        Exec::new(ExecPolicy::default(), Vec::new())
    }

    /// The program `name` as this node would run it, or why not.
    fn resolve(&self, name: &str) -> Result<PathBuf, Refusal> {
        let program = self.policy.find(name).map_err(Refusal::NotFound)?;
        if let Some(allowed) = &self.policy.allow {
            let real = program.canonicalize().unwrap_or_else(|_| program.clone());
            if !allowed.contains(&real) {
                return Err(Refusal::NotAllowed(format!("{name} is not allowed on this node (its --exec-allow list)")));
            }
        }
        Ok(program)
    }
}

/// Why a command does not run here.
enum Refusal {
    /// No such program on this node.
    NotFound(String),
    /// The owner's `--exec-allow` list leaves it out.
    NotAllowed(String),
}

impl ExecPolicy {
    /// `name` found on this node's PATH (or as a path).
    pub fn find(&self, name: &str) -> Result<PathBuf, String> {
        let found = if name.contains('/') {
            Some(PathBuf::from(name)).filter(|p| is_executable(p))
        } else {
            std::env::split_paths(&self.path).map(|d| d.join(name)).find(|p| is_executable(p))
        };
        found.ok_or_else(|| format!("{name}: command not found"))
    }
}

impl Task for Exec {
    const NAME: &'static str = "exec";
    type Input = Vec<ExecPiece>;
    type Piece = ExecPiece;
    type Output = ExecOutput;
    type Result = Vec<ExecOutput>;
    const MAY_RUN_INLINE: bool = false;

    fn split(&self, pieces: &Vec<ExecPiece>) -> Result<Vec<ExecPiece>, TaskError> {
        if pieces.is_empty() {
            return Err(TaskError::Invalid("no inputs: nothing to run".into()));
        }
        Ok(pieces.clone())
    }

    fn run(&self, piece: ExecPiece, cancel: &CancelFlag) -> Result<ExecOutput, TaskError> {
        if piece.avoid.iter().any(|p| *p == self.me) {
            return Err(TaskError::Failed("ran this command before; its retry goes to another peer".into()));
        }
        let (name, args) = piece.argv.split_first().ok_or_else(|| TaskError::Failed("an empty command".into()))?;
        let program = match self.resolve(name) {
            Ok(program) => program,
            // As a shell says it, and fails it: the command is wrong, not this node.
            Err(Refusal::NotFound(why)) => return Ok(ExecOutput::not_found(&self.host, why)),
            // This node's own rule: another peer may allow it.
            Err(Refusal::NotAllowed(why)) => return Err(TaskError::Failed(why)),
        };
        let workdir = WorkDir::new(self.policy.dir.as_deref(), self.policy.user)
            .map_err(|e| TaskError::Failed(format!("creating a working directory: {e}")))?;
        let mut env = vec![
            ("PATH".to_string(), self.policy.path.clone()),
            ("MESHWORK_PIECE".to_string(), piece.seq.to_string()),
            ("MESHWORK_JOB".to_string(), piece.job.clone()),
        ];
        env.extend(piece.env.iter().cloned());
        let spawn = Spawn {
            program,
            name: name.clone(),
            args: args.to_vec(),
            env,
            dir: workdir.path().to_path_buf(),
            user: self.policy.user,
            timeout: (piece.timeout_ms > 0).then(|| Duration::from_millis(piece.timeout_ms)),
            max_output: piece.max_output.min(MAX_OUTPUT_CAP) as usize,
        };
        let f = process::run(&spawn, cancel).map_err(|e| TaskError::Failed(format!("{name}: {e}")))?;
        if f.cancelled {
            return Err(TaskError::Cancelled);
        }
        Ok(ExecOutput {
            host: self.host.clone(),
            start_ms: f.started.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            runtime_ms: f.runtime.as_millis() as u64,
            exit: f.code.unwrap_or(-1),
            signal: f.signal.unwrap_or(0),
            timed_out: f.timed_out,
            stdout: ByteBuf::from(f.stdout.bytes),
            stderr: ByteBuf::from(f.stderr.bytes),
            stdout_dropped: f.stdout.dropped,
            stderr_dropped: f.stderr.dropped,
        })
    }

    fn merge(&self, _: &Vec<ExecPiece>, outputs: Vec<ExecOutput>) -> Result<Vec<ExecOutput>, TaskError> {
        Ok(outputs)
    }
}

/// A command's working directory: a fresh one removed afterwards, or the
/// one the owner chose (kept).
struct WorkDir {
    path: PathBuf,
    fresh: bool,
}

impl WorkDir {
    /// A fresh directory is given to `user` when commands run as one.
    fn new(chosen: Option<&Path>, user: Option<(u32, u32)>) -> std::io::Result<WorkDir> {
        if let Some(dir) = chosen {
            return Ok(WorkDir { path: dir.to_path_buf(), fresh: false });
        }
        let base = std::env::temp_dir();
        loop {
            let path = base.join(format!("meshwork-exec-{:016x}", rand::random::<u64>()));
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    let dir = WorkDir { path, fresh: true };
                    if let Some((uid, gid)) = user {
                        std::os::unix::fs::chown(&dir.path, Some(uid), Some(gid))?;
                    }
                    return Ok(dir);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.fresh {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// This machine's name, for the joblog's Host column.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map_or_else(|_| "localhost".into(), |h| h.trim().to_string())
}
