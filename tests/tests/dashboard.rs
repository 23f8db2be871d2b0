//! The dashboard in a real browser (headless Chromium through chromedriver,
//! see `meshwork_tests::browser`), on a mesh of three `meshwork node`
//! processes on loopback: the page shows the three peers live; a job
//! submitted from the page shows its progress rising; a worker killed with
//! SIGKILL is marked down and its pieces show as retried spans on the
//! job's timeline, done elsewhere; a job cancelled with the page's button
//! ends cancelled. `meshwork simulate --serve` opens a simulated run in
//! the same job view. Every step is asserted through the page's DOM, and
//! screenshotted to `<target>/dashboard-shots/` for people to look at.

use meshwork_tests::browser::{shots_dir, Browser, WINDOW};
use meshwork_tests::node_proc::{wait_all_live, NodeProc};
use meshwork_tests::procs::{Proc, Spawn, Stderr};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// A data directory of its own for each node (a job store is one node's).
fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshwork-dashboard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Three nodes of two slots on loopback, each live at the others; their data directories.
fn mesh() -> (Vec<NodeProc>, Vec<PathBuf>) {
    let dirs: Vec<PathBuf> = (0..3).map(|i| data_dir(&format!("node{i}"))).collect();
    let opts = |i: usize| {
        ["--http", "127.0.0.1:0", "--slots", "2", "--data-dir", dirs[i].to_str().unwrap()].map(String::from).to_vec()
    };
    let start = |i: usize, join: Option<&str>| {
        let o = opts(i);
        NodeProc::start_local(&format!("node {i}"), join, &o.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let first = start(0, None);
    let join = first.addr.clone();
    let mut nodes = vec![first, start(1, Some(&join)), start(2, Some(&join))];
    let since = nodes[0].started;
    wait_all_live(&mut nodes, since, T).unwrap_or_else(|e| panic!("{e}"));
    (nodes, dirs)
}

/// A JavaScript expression in a string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// A script that sets `v` to the page's row of job `id` as `{state, done}`
/// (null while there is none), then runs `then`.
fn job_row(id: u64, then: &str) -> String {
    format!(
        "const r = document.querySelector('#jobs tr[data-job=\"{id}\"]'); \
         const v = r && {{state: r.dataset.state, done: Number(r.dataset.done)}}; {then}"
    )
}

/// Submits `task args` through the page's form (a real click); the new job's id.
fn submit(b: &Browser, task: &str, args: &str, before: u64) -> u64 {
    b.eval(&format!(
        "document.querySelector('#submit-task').value = {}; document.querySelector('#submit-args').value = {};",
        js(task),
        js(args)
    ))
    .unwrap();
    b.click("#submit button[type=submit]", T).unwrap();
    let newest = b
        .wait(
            "the submitted job in the job list",
            T,
            &format!(
                "const r = document.querySelector('#jobs tbody tr[data-job]'); \
                 return r && Number(r.dataset.job) > {before} && Number(r.dataset.job);"
            ),
        )
        .unwrap_or_else(|e| {
            panic!(
                "{e}; the form says: {}",
                b.eval("return document.querySelector('#submit-error').textContent").unwrap()
            )
        });
    newest.as_u64().unwrap()
}

#[test]
fn the_dashboard_shows_the_mesh_a_job_a_killed_peer_and_a_cancel() {
    let browser = Browser::start().unwrap_or_else(|e| panic!("{e:#}"));
    let (mut nodes, dirs) = mesh();
    let url = nodes[0].http_url();
    let shots = shots_dir();
    let shot = |name: &str| {
        let path = shots.join(name);
        browser.screenshot(&path).unwrap();
        eprintln!("screenshot {}", path.display());
    };

    // 1. The mesh: this node and its two peers, up.
    browser.goto(&url).unwrap();
    browser
        .wait(
            "3 peers up of 3",
            T,
            "const c = document.querySelector('#peer-count'); return c.dataset.up === '3' && c.dataset.total === '3';",
        )
        .unwrap();
    for n in &nodes {
        let status = browser
            .eval(&format!("return document.querySelector('#mesh tr[data-peer=\"{}\"]')?.dataset.status", n.peer));
        assert_eq!(status.unwrap(), "up", "{} in the mesh table", n.label);
    }
    // Live: the stream brings the mesh at least once a second (3 within 4.5 s).
    let updates = "return Number(document.querySelector('#peer-count').dataset.updates);";
    let before = browser.eval(updates).unwrap().as_u64().unwrap();
    let live = format!("{} >= {}", updates.trim_end_matches(';'), before + 3);
    browser.wait("3 more mesh updates", Duration::from_millis(4500), &live).unwrap();
    shot("1-mesh.png");

    // 2. A job submitted from the page: its progress rises.
    let job = submit(&browser, "sleep", "--pieces 96 --ms 500", 0);
    let done_then =
        browser.wait("pieces done", T, &job_row(job, "return v && v.done > 0 && v.done;")).unwrap().as_u64().unwrap();
    let done_later = browser
        .wait("the progress rising", T, &job_row(job, &format!("return v && v.done > {done_then} && v.done;")))
        .unwrap()
        .as_u64()
        .unwrap();
    assert!(done_later > done_then);
    shot("2-job-progress.png");

    // 3. A worker killed mid-job: marked down, its pieces retried on the
    // timeline and done elsewhere.
    let victim = nodes[2].peer.clone();
    nodes[2].proc.signal(libc::SIGKILL);
    nodes[2].proc.output(T).unwrap();
    browser
        .wait(
            "the killed node marked down",
            T,
            &format!("return document.querySelector('#mesh tr[data-peer=\"{victim}\"]')?.dataset.status === 'down';"),
        )
        .unwrap();
    let done = browser.wait("the job done", T, &job_row(job, "return v && v.state === 'done' && v;")).unwrap();
    assert_eq!(done["done"], 96, "{done}");
    browser.click(&format!("#jobs tr[data-job=\"{job}\"] td.state"), T).unwrap();
    let peers = browser
        .wait(
            "the finished job's timeline",
            T,
            "const t = document.querySelector('#gantt'); \
             const rows = [...document.querySelectorAll('#job-peers tbody tr')]; \
             return document.querySelector('#job-summary').textContent.includes('finished') && rows.length > 0 && \
               rows.map(r => ({peer: r.dataset.peer, done: Number(r.dataset.done) + Number(r.dataset.backup_won), \
                               retried: Number(r.dataset.retried), spans: Number(t.dataset.spans)}));",
        )
        .unwrap();
    let row = |peer: &str| peers.as_array().unwrap().iter().find(|r| r["peer"] == peer).cloned().unwrap_or(Value::Null);
    assert!(row(&victim)["retried"].as_u64().unwrap_or(0) >= 1, "the killed node's pieces were retried: {peers}");
    let done_elsewhere: u64 = nodes[..2].iter().map(|n| row(&n.peer)["done"].as_u64().unwrap_or(0)).sum::<u64>()
        + row(&victim)["done"].as_u64().unwrap_or(0);
    assert_eq!(done_elsewhere, 96, "every piece done once, on the timeline: {peers}");
    // What the page drew, from the API: each piece won once, and each of
    // the killed node's retried pieces re-placed and done on another peer.
    let timeline: Value = ureq::get(&format!("{url}/api/jobs/{job}/timeline")).call().unwrap().into_json().unwrap();
    let victim_index = timeline["peers"].as_array().unwrap().iter().position(|p| *p == victim).unwrap();
    let spans = timeline["spans"].as_array().unwrap();
    let winner = |piece: u64| {
        let won: Vec<&Value> =
            spans.iter().filter(|s| s[0] == piece && (s[4] == "done" || s[4] == "backup_won")).collect();
        assert_eq!(won.len(), 1, "piece {piece} won once: {won:?}");
        won[0].clone()
    };
    (0..96).for_each(|p| drop(winner(p)));
    for retried in spans.iter().filter(|s| s[4] == "retried") {
        assert_eq!(retried[1], victim_index, "only the killed node's pieces were retried: {retried}");
        let won = winner(retried[0].as_u64().unwrap());
        assert_ne!(won[1], victim_index, "re-placed elsewhere: {won}");
        assert!(won[2].as_u64() >= retried[3].as_u64(), "re-placed after the retry: {retried} then {won}");
    }
    browser.eval("document.querySelector('#job-section').scrollIntoView()").unwrap();
    shot("3-killed-peer-timeline.png");
    // The whole page at once (the README's picture), then back to 1280×800.
    browser.window(1280, 1220).unwrap();
    browser.eval("window.scrollTo(0, 0)").unwrap();
    shot("overview.png");
    browser.window(WINDOW.0, WINDOW.1).unwrap();

    // 4. A running job cancelled with its button.
    let long = submit(&browser, "sleep", "--pieces 200 --ms 1000", job);
    browser
        .wait("the long job running", T, &job_row(long, "return v && v.state === 'running' && v.done > 0;"))
        .unwrap();
    browser.click(&format!("#jobs tr[data-job=\"{long}\"] button[data-action=cancel]"), T).unwrap();
    browser.wait("the job cancelled", T, &job_row(long, "return v && v.state === 'cancelled';")).unwrap();
    browser
        .wait(
            "cancelled spans on its timeline",
            T,
            "return document.querySelector('#job-summary').textContent.includes('finished') && \
                    Number(document.querySelector('#legend [data-outcome=cancelled]')?.dataset.count) > 0;",
        )
        .unwrap();
    browser.eval("window.scrollTo(0, 0)").unwrap();
    shot("4-cancelled.png");

    drop(browser);
    drop(nodes);
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_simulated_run_opens_in_the_same_job_view() {
    let browser = Browser::start().unwrap_or_else(|e| panic!("{e:#}"));
    let how = Spawn { stderr: Stderr::Pipe, die_with_parent: true, ..Spawn::default() };
    let args = ["simulate", "--nodes", "12", "--pieces", "600", "--slots", "2", "--seed", "3", "--churn", "25%"];
    let mut sim = Proc::spawn(&how, &[&args[..], &["--serve", "127.0.0.1:0"]].concat());
    let line = sim.wait_for("the dashboard URL", T, |l| l.text.starts_with("dashboard http://")).unwrap();
    let url = line.text.split_whitespace().nth(1).unwrap().to_string();
    // Serving changes nothing in the run: the same report line (events and
    // trace hash) as without --serve.
    let is_events = |l: &meshwork_tests::procs::Line| l.text.starts_with("events ");
    let served = match sim.log.iter().find(|l| is_events(l)) {
        Some(l) => l.text.clone(),
        None => sim.wait_for("the report's events line", T, is_events).unwrap().text,
    };
    let (code, plain) = Proc::start(&args).output(T).unwrap();
    assert_eq!(code, 0, "{plain}");
    assert!(plain.lines().any(|l| l == served), "{served:?} not in the run without --serve:\n{plain}");

    browser.goto(&url).unwrap();
    let peers = browser
        .wait(
            "the simulated job's timeline",
            T,
            "const job = document.querySelector('#jobs tr[data-job=\"1\"]'); \
             const rows = [...document.querySelectorAll('#job-peers tbody tr')]; \
             return job && job.dataset.state === 'done' && rows.length > 0 && \
               document.querySelector('#job-summary').textContent.includes('finished') && \
               rows.map(r => ({peer: r.dataset.peer, done: Number(r.dataset.done) + Number(r.dataset.backup_won), \
                               retried: Number(r.dataset.retried)}));",
        )
        .unwrap();
    let peers = peers.as_array().unwrap();
    let done: u64 = peers.iter().map(|p| p["done"].as_u64().unwrap()).sum();
    assert_eq!(done, 600, "every piece done once on the timeline: {peers:?}");
    assert!(peers.len() >= 12, "the simulated nodes (and joiners) ran pieces: {peers:?}");
    assert!(peers.iter().all(|p| p["peer"].as_str().unwrap().starts_with("node ")), "{peers:?}");
    let read_only = browser
        .eval(
            "return document.querySelector('#mesh-section').hidden && \
                    getComputedStyle(document.querySelector('#submit')).display === 'none' && \
                    document.querySelectorAll('button[data-action=cancel]').length === 0;",
        )
        .unwrap();
    assert_eq!(read_only, true, "a simulated run shows no mesh and no buttons");
    browser.eval("document.querySelector('#job-section').scrollIntoView()").unwrap();
    let path = shots_dir().join("5-simulation.png");
    browser.screenshot(&path).unwrap();
    eprintln!("screenshot {}", path.display());
}
