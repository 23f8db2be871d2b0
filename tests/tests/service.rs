//! The node's job service: on real in-process nodes, a job submitted to it
//! runs to its result and is remembered, and a job found unfinished in the
//! store when the service starts resumes, running only the pieces whose
//! outputs the store lacks; on a real `meshwork node` process killed with
//! SIGKILL mid-job and restarted, `meshwork submit`/`wait` get the result.

use meshwork::cli::job_kind;
use meshwork::service::{JobState, JobView, Retention, Service, Store};
use meshwork_protocol::wire::to_cbor;
use meshwork_tests::api::{get, post, scrape, value};
use meshwork_tests::node_proc::NodeProc;
use meshwork_tests::procs::meshwork_bin;
use meshwork_tests::{local_mesh, wait_connected};
use std::path::PathBuf;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshwork-service-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The service over `dir` again, once the last one has let go of it.
async fn reopen(node: &meshwork::Node, dir: &std::path::Path) -> Service {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        match Service::start(node.client(), dir, job_kind, Retention::default()) {
            Ok(service) => return service,
            // A poll step of a wait with a deadline.
            Err(_) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("reopening the store: {e}"),
        }
    }
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Waits until job `id` has finished; its view then.
async fn finished(service: &Service, id: u64) -> JobView {
    let mut updates = service.updates();
    tokio::time::timeout(T, async {
        loop {
            let view = service.job(id).unwrap();
            if view.state.finished() {
                return view;
            }
            let _ = updates.recv().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("job {id} did not finish in {T:?}: {:?}", service.job(id)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_job_runs_to_its_result_and_is_remembered_after_a_restart() {
    let dir = scratch("submit");
    let nodes = local_mesh(3, 1).await.unwrap();
    wait_connected(&nodes, T).await.unwrap();
    let service = Service::start(nodes[0].client(), &dir, job_kind, Retention::default()).unwrap();
    let job = service.submit("primes", &args(&["--from", "0", "--to", "300000", "--pieces", "12"])).unwrap();
    assert_eq!((job.id, job.state, job.pieces), (1, JobState::Running, 12));
    let view = finished(&service, job.id).await;
    assert_eq!(view.state, JobState::Done, "{view:?}");
    let result = service.result(job.id).unwrap().unwrap();
    let (text, json) = (result.text, result.json);
    assert!(text.contains("25997"), "{text}");
    assert_eq!(json["count"], 25_997, "{json}");

    let bad = service.submit("primes", &args(&["--to", "x"])).unwrap_err().to_string();
    assert!(bad.contains("--to"), "the CLI's words: {bad}");
    let bad = service.submit("nosuchtask", &[]).unwrap_err().to_string();
    assert!(bad.contains("nosuchtask"), "{bad}");

    drop(service);
    // The job's task lets go of the store a moment after its last update.
    let again = reopen(&nodes[0], &dir).await;
    let jobs = again.jobs().unwrap();
    assert_eq!(jobs.len(), 1, "the failed submissions left nothing: {jobs:?}");
    assert_eq!(again.result(job.id).unwrap().unwrap().text, text);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_job_resumes_running_only_the_pieces_without_a_stored_output() {
    let dir = scratch("resume");
    let words = args(&["--from", "0", "--to", "100000", "--pieces", "4"]);
    // As a node that crashed would leave it: the job running, pieces 0 and
    // 2 done. Their stored outputs are not the true counts, so a result
    // that includes them proves they were not run again.
    {
        let store = Store::open(&dir).unwrap();
        let inputs = job_kind("primes", &words).unwrap().inputs().unwrap();
        let record = store.add("primes", &words, &inputs, 0).unwrap();
        store.save_outputs(record.id, &[(0, to_cbor(&1_000_000u64)), (2, to_cbor(&2_000_000u64))]).unwrap();
    }
    let nodes = local_mesh(2, 1).await.unwrap();
    wait_connected(&nodes, T).await.unwrap();
    let service = Service::start(nodes[0].client(), &dir, job_kind, Retention::default()).unwrap();
    let view = finished(&service, 1).await;
    assert_eq!(view.state, JobState::Done, "{view:?}");
    // π(100000) = 9592: pieces 1 and 3 are [25000, 50000) and [75000, 100000).
    let (lo, hi) = (
        meshwork::tasks::run_locally(&meshwork::tasks::primes::Primes, &primes(25_000, 50_000)).unwrap(),
        meshwork::tasks::run_locally(&meshwork::tasks::primes::Primes, &primes(75_000, 100_000)).unwrap(),
    );
    let json = service.result(1).unwrap().unwrap().json;
    assert_eq!(json["count"], 3_000_000 + lo + hi, "stored outputs kept, the rest run: {json}");
    assert_eq!(view.per_peer.values().sum::<u32>(), 2, "two pieces ran: {view:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn primes(from: u64, to: u64) -> meshwork::tasks::primes::PrimesInput {
    meshwork::tasks::primes::PrimesInput { from, to, pieces: 1 }
}

/// `meshwork <args>` to its end (killed after `T` by coreutils' `timeout`).
fn cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new("timeout")
        .arg(T.as_secs().to_string())
        .arg(meshwork_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("running meshwork");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Job `id`'s view through `meshwork status --json`.
fn status(url: &str, id: &str) -> serde_json::Value {
    let (code, out, err) = cli(&["status", "--node", url, "--json", id]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn a_node_killed_mid_job_resumes_it_after_a_restart_and_runs_only_what_was_not_done() {
    let dir = scratch("crash");
    let (node, url) = service_node("node", &dir, &[], &[]);
    let (code, id, err) = cli(&["submit", "--node", &url, "sleep", "--pieces", "30", "--ms", "300"]);
    assert_eq!(code, 0, "{err}");
    let id = id.trim().to_string();
    // Mid-job: some pieces done (and so stored), most not.
    let deadline = std::time::Instant::now() + T;
    let done_before = loop {
        let done = status(&url, &id)["done"].as_u64().unwrap();
        if done >= 6 {
            break done;
        }
        assert!(std::time::Instant::now() < deadline, "the job did not progress");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut node = node;
    node.proc.signal(libc::SIGKILL);
    node.proc.output(T).unwrap();

    let (_again, url) = service_node("node, restarted", &dir, &[], &[]);
    let (code, out, err) = cli(&["wait", "--node", &url, "--json", &id]);
    assert_eq!(code, 0, "{err}");
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["result"]["total_ms"], 9_000, "the same result as without the crash: {result}");
    let view = status(&url, &id);
    assert_eq!(view["state"], "done");
    let ran_after: u64 = view["per_peer"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert!(ran_after <= 30 - done_before, "{ran_after} pieces ran after the restart, {done_before} were done before");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped
/// (a disk that fills; needs root, as the LAN lab does).
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(name: &str, size: &str) -> SmallDisk {
        let dir = scratch(name);
        std::fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mounting a tmpfs on {} failed: this test needs root (as CI runs)", dir.display());
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_job_with_a_clear_error_and_leaves_the_store_readable() {
    let disk = SmallDisk::mount("full", "3m");
    let nodes = local_mesh(2, 1).await.unwrap();
    wait_connected(&nodes, T).await.unwrap();
    let service = Service::start(nodes[0].client(), &disk.0, job_kind, Retention::default()).unwrap();
    let small = service.submit("primes", &args(&["--to", "10000", "--pieces", "2"])).unwrap();
    assert_eq!(finished(&service, small.id).await.state, JobState::Done);
    // 16 bands of 2048 x 2048 pixels: 4 MiB of outputs for a 3 MiB disk.
    let image = ["--width", "2048", "--height", "2048", "--max-iter", "2"];
    let big = service.submit("mandelbrot", &args(&image)).unwrap();
    let view = finished(&service, big.id).await;
    assert_eq!(view.state, JobState::Failed, "{view:?}");
    let error = view.error.unwrap_or_default();
    assert!(error.contains("storing outputs") && error.contains("No space left on device"), "{error}");
    drop(service);
    // Not corrupt: it opens, with both jobs as they ended, and takes more.
    let again = reopen(&nodes[0], &disk.0).await;
    assert_eq!(again.result(small.id).unwrap().unwrap().json["count"], 1229);
    assert_eq!(again.job(big.id).unwrap().state, JobState::Failed);
    // The disk is still nearly full: a new job is taken, or refused in
    // the same clear words, and either way the store stays whole.
    match again.submit("primes", &args(&["--to", "100", "--pieces", "2"])) {
        Ok(more) => assert_eq!(finished(&again, more.id).await.state, JobState::Done),
        Err(e) => assert!(e.to_string().contains("No space left on device"), "{e}"),
    }
    assert!(again.jobs().unwrap().len() >= 2);
    assert_eq!(again.result(small.id).unwrap().unwrap().json["count"], 1229, "what was stored before stays");
}

/// Starts `meshwork node` on loopback with its API and `--data-dir dir`,
/// and `env`; its API's URL.
fn service_node(label: &str, dir: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> (NodeProc, String) {
    let mut opts = vec!["--http", "127.0.0.1:0", "--data-dir", dir.to_str().unwrap(), "--slots", "2"];
    opts.extend_from_slice(extra);
    let mut node = NodeProc::start_local_with(label, None, &opts, env);
    let url = node.http_url();
    (node, url)
}

#[test]
fn outputs_that_came_back_but_were_not_written_when_the_node_crashed_are_run_again() {
    let dir = scratch("failpoint");
    // The node aborts as it is about to write its fourth batch of outputs:
    // those outputs came back from the pieces, and are lost with it.
    let crash = [("FAILPOINTS", "service::before-store=3*off->return")];
    let (mut node, url) = service_node("node", &dir, &[], &crash);
    let (code, id, err) = cli(&["submit", "--node", &url, "sleep", "--pieces", "30", "--ms", "100"]);
    assert_eq!(code, 0, "{err}");
    let id: u64 = id.trim().parse().unwrap();
    let (code, _) = node.proc.output(T).expect("the node crashed at the failpoint");
    assert_eq!(code, -1, "killed by a signal (SIGABRT), not an exit");
    let stored = Store::open(&dir).unwrap().outputs(id).unwrap().len() as u64;
    assert!((3..30).contains(&stored), "three batches were written, the fourth not: {stored}");

    let (_again, url) = service_node("node, restarted", &dir, &[], &[]);
    let (code, out, err) = cli(&["wait", "--node", &url, "--json", &id.to_string()]);
    assert_eq!(code, 0, "{err}");
    let result: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result["result"]["total_ms"], 3_000, "each piece's output counted once: {result}");
    let view = status(&url, &id.to_string());
    let ran_after: u64 = view["per_peer"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(ran_after, 30 - stored, "every piece not on disk ran again, the lost batch included");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_png_result_is_fetched_with_result_out_and_old_jobs_go_as_the_retention_says() {
    let dir = scratch("retention");
    let (_node, url) = service_node("node", &dir, &["--keep-jobs", "1"], &[]);
    let image = ["--width", "96", "--height", "64", "--pieces", "4", "--max-iter", "50"];
    let (code, out, err) = cli(&[&["submit", "--node", &url, "--wait", "mandelbrot"][..], &image].concat());
    assert_eq!(code, 0, "{err}");
    let id = out.lines().next().unwrap().to_string();
    assert!(out.contains("a 96x64 PNG"), "{out}");
    let png = dir.join("fetched.png");
    let (code, _, err) = cli(&["result", "--node", &url, &id, "-o", png.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let input =
        meshwork::tasks::mandelbrot::MandelbrotInput { width: 96, height: 64, max_iter: 50, pieces: 4, out: None };
    let local = meshwork::tasks::run_locally(&meshwork::tasks::mandelbrot::Mandelbrot, &input).unwrap();
    assert_eq!(std::fs::read(&png).unwrap(), local.png, "the PNG the job made, byte for byte");

    let (code, _, err) = cli(&["submit", "--node", &url, "--wait", "primes", "--to", "1000"]);
    assert_eq!(code, 0, "{err}");
    let ids = |url: &str| -> Vec<u64> {
        let (code, out, err) = cli(&["jobs", "--node", url, "--json"]);
        assert_eq!(code, 0, "{err}");
        let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        list.iter().map(|j| j["id"].as_u64().unwrap()).collect()
    };
    assert_eq!(ids(&url), vec![2], "--keep-jobs 1: the older finished job is gone");
    let (code, out, _) = cli(&["result", "--node", &url, &id]);
    assert_ne!(code, 0, "{out}");
    let (code, out, err) = cli(&["jobs", "--node", &url, "--prune"]);
    assert_eq!((code, out.trim()), (0, "removed 1 finished jobs"), "{err}");
    assert_eq!(ids(&url), Vec::<u64>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn two_hundred_jobs_submitted_at_once_through_the_api_all_end_with_their_own_results() {
    let mut nodes = meshwork_tests::node_proc::local_mesh(3, &["--http", "127.0.0.1:0"], T);
    let url = nodes[0].http_url();
    // Job i counts the primes in its own range, so a result shows which job it is.
    let range = |i: u64| (i * 1_000, i * 1_000 + 20_000);
    let posts: Vec<_> = (0..200u64)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let (from, to) = range(i);
                let words = args(&["--from", &from.to_string(), "--to", &to.to_string(), "--pieces", "4"]);
                let r = post(&url, "/api/jobs", &serde_json::json!({ "task": "primes", "args": words }));
                assert_eq!(r.status, 201, "{}", r.body);
                (r.json()["id"].as_u64().unwrap(), i)
            })
        })
        .collect();
    let jobs: Vec<(u64, u64)> = posts.into_iter().map(|t| t.join().unwrap()).collect();
    let deadline = std::time::Instant::now() + 2 * T;
    loop {
        let list = get(&url, "/api/jobs?limit=1000", None).json();
        let running: Vec<_> = list.as_array().unwrap().iter().filter(|j| j["state"] == "running").collect();
        if running.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{} jobs still running", running.len());
        // A poll step of a wait with a deadline.
        std::thread::sleep(Duration::from_millis(200));
    }
    for (id, i) in &jobs {
        let (from, to) = range(*i);
        let expected = meshwork::tasks::run_locally(&meshwork::tasks::primes::Primes, &primes(from, to)).unwrap();
        let r = get(&url, &format!("/api/jobs/{id}/result"), None);
        assert_eq!(r.status, 200, "job {id}: {}", r.body);
        assert_eq!(r.json()["result"]["count"], expected, "job {id} counts [{from}, {to})");
    }
    let metrics = scrape(&url);
    assert_eq!(value(&metrics, "meshwork_jobs", &[("state", "done")]), 200.0);
    assert_eq!(value(&metrics, "meshwork_jobs", &[("state", "running")]), 0.0);
    assert!(value(&metrics, "meshwork_store_size_bytes", &[]) > 0.0);
    let durations = metrics.samples.iter().find(|s| s.metric == "meshwork_job_duration_seconds");
    match durations.map(|s| &s.value) {
        Some(prometheus_parse::Value::Histogram(buckets)) => {
            assert_eq!(buckets.last().map(|b| b.count), Some(200.0), "every job's duration: {buckets:?}")
        }
        other => panic!("no job duration histogram: {other:?}"),
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", nodes[0].proc.pid())).unwrap();
    let peak = status.lines().find(|l| l.starts_with("VmHWM")).unwrap_or("VmHWM: ?");
    println!("the submitting node after 200 jobs of 4 pieces: {peak}");
}
