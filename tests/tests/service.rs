//! The node's job service: on real in-process nodes, a job submitted to it
//! runs to its result and is remembered, and a job found unfinished in the
//! store when the service starts resumes, running only the pieces whose
//! outputs the store lacks; on a real `meshwork node` process killed with
//! SIGKILL mid-job and restarted, `meshwork submit`/`wait` get the result.

use meshwork::cli::job_kind;
use meshwork::service::{JobState, JobView, Retention, Service, Store};
use meshwork_protocol::wire::to_cbor;
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
    .expect("the job finished in time")
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
    let (text, json) = service.result(job.id).unwrap().unwrap();
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
    assert_eq!(again.result(job.id).unwrap().unwrap().0, text);
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
    let (_, json) = service.result(1).unwrap().unwrap();
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
    let data = dir.to_str().unwrap();
    let opts = ["--http", "127.0.0.1:0", "--data-dir", data, "--slots", "2"];
    let mut node = NodeProc::start_local("node", None, &opts);
    let url = node.http_url();
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
    node.proc.signal(libc::SIGKILL);
    node.proc.output(T).unwrap();

    let mut again = NodeProc::start_local("node, restarted", None, &opts);
    let url = again.http_url();
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
