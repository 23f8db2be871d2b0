//! `meshwork run wasm`: a user's module over the mesh. How the job's input
//! is cut into pieces (each piece's stdin), and what happens to the pieces'
//! outputs (concatenated, one file each, or fed to a reducer module).

use super::sandbox::{Guest, PieceCall, Sandbox};
use super::task::WasmJob;
use super::ModuleId;
use crate::tasks::Rendered;
use anyhow::{bail, Context};
use meshwork_protocol::task::CancelFlag;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Run a WebAssembly module (WASI preview 1 command) on every piece: a
/// piece is its stdin, its output what it writes to stdout.
#[derive(clap::Args, Debug, Clone)]
pub struct WasmArgs {
    /// The module (.wasm), e.g. `clang --target=wasm32-wasi -O2 -o m.wasm m.c`.
    pub module: PathBuf,
    /// Pieces from a range: each gets "start end\n" on stdin (with --pieces).
    #[arg(long, value_name = "A..B", conflicts_with_all = ["lines", "files", "stdin"])]
    pub range: Option<String>,
    /// Number of equal ranges (with --range).
    #[arg(long, default_value_t = 64)]
    pub pieces: u32,
    /// Pieces from the lines of a text file (--per-piece lines each).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["files", "stdin"])]
    pub lines: Option<PathBuf>,
    /// Pieces from standard input's lines (--per-piece lines each).
    #[arg(long, conflicts_with = "files")]
    pub stdin: bool,
    /// Lines per piece (with --lines or --stdin).
    #[arg(long, default_value_t = 1000)]
    pub per_piece: usize,
    /// One piece per file: the file's bytes are its stdin.
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// An argument for the module (repeatable), its argv[1..].
    #[arg(long = "arg", value_name = "ARG")]
    pub args: Vec<String>,
    /// Merge with this module instead: it gets every output, in piece
    /// order, on stdin; its stdout is the result.
    #[arg(long, value_name = "R.wasm", conflicts_with = "out_dir")]
    pub reduce: Option<PathBuf>,
    /// Write each piece's output to DIR/piece-NNNNNN.out instead.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// What becomes of the outputs.
#[derive(Clone, Debug)]
pub enum Merge {
    /// Concatenated, in piece order, on stdout.
    Concat,
    /// One file per piece in a directory.
    OutDir(PathBuf),
    /// Fed to a reducer module, compiled here.
    Reduce(Guest),
}

/// A wasm job as the command line describes it.
#[derive(Debug)]
pub struct WasmRun {
    /// The module's bytes.
    pub module: Vec<u8>,
    /// The pieces' stdins.
    pub inputs: Vec<Vec<u8>>,
    /// argv[1..].
    pub args: Vec<String>,
    /// What to do with the outputs.
    pub merge: Merge,
}

impl WasmArgs {
    /// Reads and checks everything before the mesh is joined: the modules
    /// compile here (an invalid one is a usage error, not a failed job on
    /// every peer), the inputs exist, the output directory can be written.
    pub fn prepare(&self, sandbox: &Sandbox) -> anyhow::Result<WasmRun> {
        let module = std::fs::read(&self.module).with_context(|| format!("reading {}", self.module.display()))?;
        sandbox.compile(&module).with_context(|| format!("{} is not a usable module", self.module.display()))?;
        let merge = match (&self.reduce, &self.out_dir) {
            (Some(r), _) => {
                let bytes = std::fs::read(r).with_context(|| format!("reading {}", r.display()))?;
                Merge::Reduce(
                    sandbox.compile(&bytes).with_context(|| format!("{} is not a usable module", r.display()))?,
                )
            }
            (None, Some(dir)) => {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                Merge::OutDir(dir.clone())
            }
            (None, None) => Merge::Concat,
        };
        Ok(WasmRun { module, inputs: self.inputs()?, args: self.args.clone(), merge })
    }

    fn inputs(&self) -> anyhow::Result<Vec<Vec<u8>>> {
        if let Some(range) = &self.range {
            return range_pieces(range, self.pieces);
        }
        if self.per_piece == 0 {
            bail!("--per-piece must be at least 1");
        }
        let text = if let Some(path) = &self.lines {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        } else if self.stdin {
            let mut all = Vec::new();
            std::io::stdin().read_to_end(&mut all).context("reading standard input")?;
            all
        } else if !self.files.is_empty() {
            return self
                .files
                .iter()
                .map(|f| std::fs::read(f).with_context(|| format!("reading {}", f.display())))
                .collect();
        } else {
            bail!("say what the pieces are: --range A..B, --lines FILE, --stdin or --files F...");
        };
        let lines: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
        if lines.is_empty() {
            bail!("no lines to cut into pieces");
        }
        Ok(lines.chunks(self.per_piece).map(|c| c.concat()).collect())
    }
}

/// "A..B" cut into `pieces` equal ranges, each "start end\n".
fn range_pieces(range: &str, pieces: u32) -> anyhow::Result<Vec<Vec<u8>>> {
    let (a, b) = range.split_once("..").context("--range takes A..B")?;
    let (a, b): (u64, u64) = (a.trim().parse().context("--range start")?, b.trim().parse().context("--range end")?);
    if b <= a || pieces == 0 {
        bail!("--range needs A < B and --pieces at least 1");
    }
    let n = u64::from(pieces).min(b - a);
    Ok((0..n).map(|i| format!("{} {}\n", a + (b - a) * i / n, a + (b - a) * (i + 1) / n).into_bytes()).collect())
}

impl WasmRun {
    /// The job, offered as `module` by `from` (the submitter's peer id bytes).
    pub fn job(&self, module: ModuleId, from: Vec<u8>) -> WasmJob {
        WasmJob { module, from, args: self.args.clone(), inputs: self.inputs.clone() }
    }

    /// Merges the outputs as asked.
    pub fn render(&self, sandbox: &Sandbox, outputs: &[Vec<u8>]) -> anyhow::Result<Rendered> {
        let pieces = outputs.len();
        match &self.merge {
            Merge::Concat => Ok(text_of(outputs.concat(), pieces)),
            Merge::Reduce(reducer) => {
                let all = outputs.concat();
                let call = PieceCall { stdin: &all, pieces: 1, ..PieceCall::default() };
                // On a thread of its own: wasmtime-wasi's synchronous calls
                // start their own runtime, which they cannot do on the
                // async runtime's thread this is called from.
                let reduced =
                    std::thread::scope(|s| s.spawn(|| sandbox.run(reducer, &call, &CancelFlag::new())).join());
                let out =
                    reduced.map_err(|_| anyhow::anyhow!("the reducer panicked"))?.context("the reducer failed")?;
                Ok(text_of(out, pieces))
            }
            Merge::OutDir(dir) => {
                for (i, out) in outputs.iter().enumerate() {
                    write(&dir.join(format!("piece-{i:06}.out")), out)?;
                }
                Ok(Rendered {
                    text: format!("{pieces} outputs written to {}", dir.display()),
                    json: serde_json::json!({ "task": "wasm", "pieces": pieces, "out_dir": dir }),
                    file: None,
                })
            }
        }
    }
}

fn text_of(bytes: Vec<u8>, pieces: usize) -> Rendered {
    let text = String::from_utf8_lossy(&bytes).trim_end().to_string();
    Rendered { json: serde_json::json!({ "task": "wasm", "pieces": pieces, "output": text }), text, file: None }
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
