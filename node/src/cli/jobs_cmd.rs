//! `meshwork submit | jobs | status | wait | result | cancel`: jobs given
//! to a long-running node through its HTTP API (API.md), so they outlive
//! the terminal they were submitted from.

use super::progress::Status;
use super::{usage, EXIT_FAILED, EXIT_MESH};
use crate::service::{JobState, JobView};
use anyhow::Context;
use clap::Args;
use serde_json::Value;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Which node's API to talk to.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Node API")]
pub(super) struct ApiOpts {
    /// The node's API [default: the node on this machine].
    #[arg(long, value_name = "URL", env = "MESHWORK_NODE", default_value = "http://127.0.0.1:7070", global = true)]
    node: String,
    /// A file holding the node's bearer token (its --http-token-file).
    #[arg(long, value_name = "FILE", global = true)]
    token_file: Option<PathBuf>,
}

/// `meshwork submit`.
#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  meshwork submit primes --from 0 --to 20000000      # prints the job's id
  meshwork submit --wait sleep --pieces 8 --ms 500   # and waits for its result")]
pub struct SubmitArgs {
    /// Wait for the job to end and print its result (as `meshwork wait`).
    #[arg(long)]
    wait: bool,
    /// The task and its arguments, as `meshwork run <task>` takes them.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "TASK ARGS")]
    words: Vec<String>,
    #[command(flatten)]
    api: ApiOpts,
}

/// `meshwork jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Print the list as JSON.
    #[arg(long)]
    json: bool,
    /// Remove every finished job (done, failed, cancelled) with its result,
    /// now; the node's --keep-jobs and --keep-for do it as jobs end.
    #[arg(long)]
    prune: bool,
    #[command(flatten)]
    api: ApiOpts,
}

/// `meshwork status|wait|result|cancel ID`.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// The job's id (what `meshwork submit` printed).
    id: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: ApiOpts,
}

/// `meshwork result ID`.
#[derive(Debug, Args)]
pub struct ResultArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Write the result's file (the PNG of a `mandelbrot` job) to FILE.
    #[arg(short, long, value_name = "FILE", value_parser = super::checks::writable_file)]
    out: Option<PathBuf>,
}

/// A node's API.
struct Api {
    base: String,
    token: Option<String>,
}

impl Api {
    fn new(opts: &ApiOpts) -> anyhow::Result<Api> {
        let token = match &opts.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        Ok(Api { base: opts.node.trim_end_matches('/').to_string(), token })
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let r = ureq::request(method, &format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.set("Authorization", &format!("Bearer {t}")),
            None => r,
        }
    }

    /// Sends, and turns the API's errors into the words it gave.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Result<ureq::Response, ApiFailure> {
        let request = self.request(method, path);
        let sent = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        sent.map_err(|e| match e {
            ureq::Error::Status(code, response) => {
                let message = response
                    .into_json::<Value>()
                    .ok()
                    .and_then(|v| v["error"].as_str().map(String::from))
                    .unwrap_or_else(|| format!("HTTP {code}"));
                ApiFailure::Said(code, message)
            }
            ureq::Error::Transport(t) => ApiFailure::Unreachable(format!(
                "no node API at {} ({t}): start `meshwork node` there, or give --node URL",
                self.base
            )),
        })
    }

    fn json(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, ApiFailure> {
        let response = self.send(method, path, body)?;
        response.into_json().map_err(|e| ApiFailure::Unreachable(format!("a reply that is not JSON: {e}")))
    }

    fn view(&self, id: u64) -> Result<JobView, ApiFailure> {
        let v = self.json("GET", &format!("/api/jobs/{id}"), None)?;
        serde_json::from_value(v).map_err(|e| ApiFailure::Unreachable(format!("a job view that does not parse: {e}")))
    }
}

/// Why a request failed.
#[derive(Debug)]
enum ApiFailure {
    /// The node answered with an error.
    Said(u16, String),
    /// No node answered (or not in its API's words).
    Unreachable(String),
}

impl ApiFailure {
    /// Says so on stderr; the exit code it gives.
    fn report(self) -> ExitCode {
        match self {
            ApiFailure::Said(400, m) => {
                eprintln!("error: {m}");
                ExitCode::from(2)
            }
            ApiFailure::Said(_, m) => {
                eprintln!("error: {m}");
                ExitCode::from(EXIT_FAILED)
            }
            ApiFailure::Unreachable(m) => {
                eprintln!("error: {m}");
                ExitCode::from(EXIT_MESH)
            }
        }
    }
}

/// Runs `body`, reporting an API failure as its exit code.
fn answered(body: impl FnOnce() -> Result<ExitCode, ApiFailure>) -> anyhow::Result<ExitCode> {
    Ok(body().unwrap_or_else(ApiFailure::report))
}

pub(super) fn submit(args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.api).map_err(usage)?;
    let (task, rest) = args.words.split_first().expect("clap requires a task");
    answered(|| {
        let body = serde_json::json!({ "task": task, "args": rest });
        let view: JobView = serde_json::from_value(api.json("POST", "/api/jobs", Some(body))?)
            .map_err(|e| ApiFailure::Unreachable(format!("a job view that does not parse: {e}")))?;
        println!("{}", view.id);
        if args.wait {
            return wait_for(&api, view.id, false, None);
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(super) fn jobs(args: JobsArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.api).map_err(usage)?;
    answered(|| {
        if args.prune {
            let removed = api.json("POST", "/api/jobs/prune", None)?["removed"].as_array().map_or(0, Vec::len);
            println!("removed {removed} finished jobs");
            return Ok(ExitCode::SUCCESS);
        }
        let list = api.json("GET", "/api/jobs", None)?;
        if args.json {
            println!("{list}");
            return Ok(ExitCode::SUCCESS);
        }
        let views: Vec<JobView> = serde_json::from_value(list)
            .map_err(|e| ApiFailure::Unreachable(format!("a job list that does not parse: {e}")))?;
        println!("{:>5}  {:<9}  {:>13}  COMMAND", "ID", "STATE", "PIECES");
        for v in views {
            let state = format!("{:?}", v.state).to_lowercase();
            println!(
                "{:>5}  {state:<9}  {:>13}  {} {}",
                v.id,
                format!("{}/{}", v.done, v.pieces),
                v.task,
                v.args.join(" ")
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(super) fn status(args: JobArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.api).map_err(usage)?;
    answered(|| {
        let v = api.view(args.id)?;
        if args.json {
            println!("{}", serde_json::to_string(&v).expect("a view serializes"));
        } else {
            println!("{}", describe(&v));
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(super) fn wait(args: JobArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.api).map_err(usage)?;
    answered(|| wait_for(&api, args.id, args.json, None))
}

pub(super) fn result(args: ResultArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.job.api).map_err(usage)?;
    answered(|| print_result(&api, args.job.id, args.job.json, args.out.as_deref()))
}

pub(super) fn cancel(args: JobArgs) -> anyhow::Result<ExitCode> {
    let api = Api::new(&args.api).map_err(usage)?;
    answered(|| {
        let answer = api.json("DELETE", &format!("/api/jobs/{}", args.id), None)?;
        if answer["cancelled"] == true {
            println!("cancelling job {}", args.id);
        } else {
            println!("job {} is not running", args.id);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// One line on a job: its state, pieces and command.
fn describe(v: &JobView) -> String {
    let state = format!("{:?}", v.state).to_lowercase();
    let mut line = format!("job {}: {state}, {}/{} pieces, {} {}", v.id, v.done, v.pieces, v.task, v.args.join(" "));
    if let Some(e) = &v.error {
        line.push_str(&format!(": {e}"));
    }
    line
}

/// Follows job `id`'s events until it ends, with a bar of its pieces on
/// a terminal, then prints its result (or why there is none; its file to
/// `out`). Exit code 0 when it is done, 1 otherwise.
fn wait_for(api: &Api, id: u64, json: bool, out: Option<&Path>) -> Result<ExitCode, ApiFailure> {
    let response = api.send("GET", &format!("/api/jobs/{id}/events"), None)?;
    let status = Status::start(false);
    let mut last = None;
    for line in std::io::BufReader::new(response.into_reader()).lines() {
        let Ok(line) = line else { break };
        let Some(data) = line.strip_prefix("data:") else { continue };
        if let Ok(view) = serde_json::from_str::<JobView>(data.trim()) {
            status.progress(view.done, view.pieces);
            let over = view.state.finished();
            last = Some(view);
            if over {
                break;
            }
        }
    }
    status.clear();
    // The stream ended: the job's state now says how.
    let view = match last {
        Some(v) if v.state.finished() => v,
        _ => api.view(id)?,
    };
    if !view.state.finished() {
        return Err(ApiFailure::Unreachable(format!("the node stopped answering while job {id} ran")));
    }
    if view.state == JobState::Done {
        return print_result(api, id, json, out);
    }
    eprintln!("{}", describe(&view));
    Ok(ExitCode::from(EXIT_FAILED))
}

/// Prints job `id`'s result, and writes its file to `out`.
fn print_result(api: &Api, id: u64, json: bool, out: Option<&Path>) -> Result<ExitCode, ApiFailure> {
    let r = api.json("GET", &format!("/api/jobs/{id}/result"), None)?;
    if let Some(path) = out {
        let response = api.send("GET", &format!("/api/jobs/{id}/result/file"), None)?;
        let mut bytes = Vec::new();
        let read = response.into_reader().read_to_end(&mut bytes);
        let failed = |e: std::io::Error| ApiFailure::Said(0, format!("writing {}: {e}", path.display()));
        read.map_err(|e| ApiFailure::Unreachable(format!("reading the result file: {e}")))?;
        std::fs::write(path, &bytes).map_err(failed)?;
        eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
    }
    if json {
        println!("{r}");
    } else {
        match r["text"].as_str() {
            Some(text) => println!("{text}"),
            None => return Err(ApiFailure::Unreachable("a result without text".into())),
        }
    }
    Ok(ExitCode::SUCCESS)
}
