//! Jobs on real meshes: every built-in task gives the single-machine result,
//! and a worker killed (SIGKILL) or stopped (SIGSTOP) mid-job by PID has its
//! pieces re-placed without losing or double-counting a result.

use meshwork::tasks::{hash_search, mandelbrot, noop, primes, run_locally, sleep, wordcount};
use meshwork::{Client, JobOptions, Node, PeerInfo};
use meshwork_protocol::task::Task;
use meshwork_protocol::{JobEvent, JobId};
use meshwork_tests::procs::{node, Proc};
use meshwork_tests::{local_config, local_mesh, wait_connected, wait_peer, wait_until};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

/// Runs `input` on the mesh through `client` and alone, returning both.
async fn both<T: Task>(client: &Client, task: T, input: T::Input) -> (T::Result, T::Result, meshwork::JobReport) {
    let (mesh, report) = client.run(&task, &input, &JobOptions::default(), |_, _| {}).await.unwrap();
    let alone = run_locally(&task, &input).unwrap();
    (mesh, alone, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_builtin_task_gives_the_same_result_on_four_nodes_as_on_one() {
    let nodes = local_mesh(4, 1).await.unwrap();
    wait_connected(&nodes, T).await.unwrap();
    let c = nodes[0].client();

    let (mesh, alone, report) =
        both(&c, primes::Primes, primes::PrimesInput { from: 0, to: 300_000, pieces: 32 }).await;
    assert_eq!((mesh, alone), (25_997, 25_997));
    assert_eq!(report.pieces_per_peer.len(), 4, "primes ran on every node: {report:?}");

    let dir = std::env::temp_dir().join(format!("mw-jobs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let m =
        mandelbrot::MandelbrotInput { width: 120, height: 90, max_iter: 64, pieces: 9, out: Some(dir.join("m.png")) };
    let (mesh, alone, _) = both(&c, mandelbrot::Mandelbrot, m).await;
    assert_eq!(mesh.png, alone.png);

    let text = "the cat and the hat\nand THE bat, the end.\n".repeat(200);
    let file = dir.join("words.txt");
    std::fs::write(&file, &text).unwrap();
    let w = wordcount::WordcountInput { file: file.clone(), top: 3, pieces: 7 };
    let (mesh, alone, _) = both(&c, wordcount::Wordcount, w).await;
    assert_eq!(mesh.top, alone.top);
    assert_eq!(mesh.top[0], ("the".to_string(), 800));

    let (mesh, alone, _) = both(&c, noop::Noop, noop::NoopInput { pieces: 5000 }).await;
    assert_eq!((mesh, alone), (5000, 5000));

    let (mesh, alone, _) = both(&c, sleep::Sleep, sleep::SleepInput { ms: 20, pieces: 8 }).await;
    assert_eq!((mesh, alone), (160, 160));

    // Any nonce that meets the difficulty is right; the mesh's first hit may differ.
    let h = hash_search::HashSearchInput { data: "meshwork".into(), difficulty: 12, pieces: 16 };
    let (mesh, _, _) = both(&c, hash_search::HashSearch, h).await;
    assert!(mesh.digest.starts_with("000"), "{mesh:?}");
    std::fs::remove_dir_all(dir).unwrap();
    for n in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_search_cancels_the_other_pieces_once_one_finds_a_nonce() {
    let nodes = local_mesh(3, 1).await.unwrap();
    wait_connected(&nodes, T).await.unwrap();
    let c = nodes[0].client();
    // Pieces of 2^24 nonces each: far longer than the search for 20 bits.
    let input = hash_search::HashSearchInput { data: "cancel me".into(), difficulty: 20, pieces: 16 };
    let (found, report) = c.run(&hash_search::HashSearch, &input, &JobOptions::default(), |_, _| {}).await.unwrap();
    assert!(found.digest.starts_with("00000"), "{found:?}");
    let ended = Instant::now();
    let ids: Vec<_> = nodes.iter().map(|n| n.peer_id()).collect();
    let took = wait_until("every worker idle", Duration::from_secs(5), || {
        let (c, ids) = (c.clone(), ids.clone());
        async move {
            for id in ids.iter().skip(1) {
                match c.status(*id).await {
                    Ok(Ok(load)) if load.running == 0 && load.queued == 0 => {}
                    _ => return false,
                }
            }
            true
        }
    })
    .await
    .unwrap();
    eprintln!(
        "hash-search: {} pieces of work stopped {took:?} after the hit ({:?} after the job ended)",
        report.pieces,
        ended.elapsed()
    );
    for n in nodes {
        n.shutdown().await;
    }
}

/// Job events with the time they arrived.
type Log = Arc<Mutex<Vec<(Instant, JobEvent)>>>;

/// Three `meshwork node` processes and an in-process submitter joined to them.
async fn process_mesh() -> (Vec<(Proc, String)>, Node) {
    let first = node(&["--slots", "1"]);
    let join = first.1.clone();
    let mut procs = vec![first];
    procs.extend((0..2).map(|_| node(&["--slots", "1", "--join", &join])));
    let mut cfg = local_config(1);
    cfg.join = vec![procs[0].1.parse().unwrap()];
    let submitter = Node::start(cfg).await.unwrap();
    let c = submitter.client();
    wait_until("three live workers", T, || {
        let c = c.clone();
        async move { c.peers().await.unwrap().iter().filter(|p| p.is_live()).count() == 3 }
    })
    .await
    .unwrap();
    (procs, submitter)
}

/// Starts `sleep` pieces on the mesh, logging events; returns the job's task handle.
fn start_sleep_job(
    client: &Client,
    log: &Log,
    pieces: u32,
    ms: u32,
) -> tokio::task::JoinHandle<Result<(u64, meshwork::JobReport), meshwork::RunError>> {
    let (c, log) = (client.clone(), log.clone());
    tokio::spawn(async move {
        let opts = JobOptions { explain: true, backups: false, ..JobOptions::default() };
        let input = sleep::SleepInput { ms, pieces };
        c.run(&sleep::Sleep, &input, &opts, move |_: JobId, e: &JobEvent| {
            log.lock().unwrap().push((Instant::now(), e.clone()))
        })
        .await
    })
}

/// Waits until a batch was placed on `peer`.
async fn wait_placed_on(client: &Client, log: &Log, peer: &str) {
    let names = client.names().clone();
    wait_until("pieces placed on the victim", T, || {
        let found = log
            .lock()
            .unwrap()
            .iter()
            .any(|(_, e)| matches!(e, JobEvent::Placed { peer: p, .. } if names.name(*p) == peer));
        async move { found }
    })
    .await
    .unwrap();
}

/// Time from `since` to the first retry of a piece that failed on `peer`.
fn first_retry_on(client: &Client, log: &Log, peer: &str, since: Instant) -> Option<Duration> {
    let names = client.names();
    log.lock().unwrap().iter().find_map(|(at, e)| match e {
        JobEvent::Retried { peer: p, .. } if names.name(*p) == peer => Some(at.duration_since(since)),
        _ => None,
    })
}

/// Runs 24 sleep pieces of 300 ms on a fresh process mesh, sends `signal` to
/// worker `victim` once it holds pieces, and checks the job's result is
/// exact. Returns the mesh, the victim's peer id, the job's report and the
/// time from the signal to the re-placement of the victim's pieces.
async fn signal_mid_job(
    victim: usize,
    signal: i32,
) -> (Vec<(Proc, String)>, Node, String, meshwork::JobReport, Duration) {
    let (procs, submitter) = process_mesh().await;
    let client = submitter.client();
    let log: Log = Arc::default();
    let job = start_sleep_job(&client, &log, 24, 300);
    let victim_peer = procs[victim].1.rsplit('/').next().unwrap().to_string();
    wait_placed_on(&client, &log, &victim_peer).await;
    procs[victim].0.signal(signal);
    let at = Instant::now();
    let (total, report) = tokio::time::timeout(T, job).await.unwrap().unwrap().unwrap();
    assert_eq!(total, 24 * 300, "every piece counted exactly once");
    assert!(report.retries >= 1, "{report:?}");
    let replaced = first_retry_on(&client, &log, &victim_peer, at).expect("the victim's pieces were retried");
    assert!(replaced < Duration::from_secs(5), "{replaced:?}");
    (procs, submitter, victim_peer, report, replaced)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_has_its_pieces_replaced_and_the_result_is_right() {
    let (_procs, submitter, _, report, replaced) = signal_mid_job(1, libc::SIGKILL).await;
    eprintln!("SIGKILL → pieces re-placed after {replaced:?}; job {report:?}");
    submitter.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_mid_job_is_detected_its_pieces_move_and_it_recovers() {
    let (procs, submitter, victim_peer, report, replaced) = signal_mid_job(2, libc::SIGSTOP).await;
    eprintln!("SIGSTOP → pieces re-placed after {replaced:?}; job {report:?}");
    let client = submitter.client();
    // It resumes, is redialled and serves again; what it sends late changes nothing.
    procs[2].0.signal(libc::SIGCONT);
    let back = wait_peer(&client, &victim_peer, "the resumed worker live again", T, PeerInfo::is_live).await.unwrap();
    eprintln!("SIGCONT → live again after {back:?}");
    let (again, _) = client
        .run(&sleep::Sleep, &sleep::SleepInput { ms: 10, pieces: 8 }, &JobOptions::default(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(again, 80);
    submitter.shutdown().await;
}
