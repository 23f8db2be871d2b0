//! The floor under B2 on this machine: a round trip of a small message
//! between two processes over loopback TCP, with nothing of meshwork or
//! libp2p in between (no encryption, no muxer, no CBOR, no scheduler).
//! B2's remote round trip cannot be faster than this.
//!
//! Standard library only, built without cargo:
//!
//! ```text
//! rustc -O --edition 2021 benches/tcp_floor.rs -o /tmp/tcp_floor && /tmp/tcp_floor
//! ```
//!
//! It runs 20,000 round trips of 64 bytes (after 2,000 for warm-up), the
//! echoing side in a child process, blocking sockets, `TCP_NODELAY` on, and
//! prints one JSON line: p50, p90 and p99 in microseconds. `--pin` runs
//! both processes on CPU 0 (through `taskset`), to show what crossing
//! vCPUs costs. `--work-us N` makes the echo busy for N µs before each
//! answer (as a worker is while it decodes, schedules and encodes), so the
//! asking side waits that long idle: the figures then say what waking an
//! idle process costs beyond the work itself.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

const WARM_UP: usize = 2_000;
const ROUND_TRIPS: usize = 20_000;
const MESSAGE: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(port) = option(&args, "--echo") {
        let work = option(&args, "--work-us").map_or(0, |w| w.parse().expect("--work-us: microseconds"));
        return echo(port, Duration::from_micros(work));
    }
    let pin = args.iter().any(|a| a == "--pin");
    let work_us = option(&args, "--work-us").unwrap_or("0").to_string();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local address").port().to_string();
    let me = std::env::current_exe().expect("own path");
    let mut child = if pin {
        Command::new("taskset").args(["-c", "0"]).arg(&me).args(["--echo", &port, "--work-us", &work_us]).spawn()
    } else {
        Command::new(&me).args(["--echo", &port, "--work-us", &work_us]).spawn()
    }
    .expect("start the echoing process");
    if pin {
        let ok = Command::new("taskset").args(["-pc", "0", &std::process::id().to_string()]).output();
        assert!(ok.is_ok_and(|o| o.status.success()), "taskset failed");
    }
    let (mut stream, _) = listener.accept().expect("the echo connects");
    stream.set_nodelay(true).expect("nodelay");
    let mut buf = [7u8; MESSAGE];
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..WARM_UP + ROUND_TRIPS {
        let start = Instant::now();
        stream.write_all(&buf).expect("send");
        stream.read_exact(&mut buf).expect("receive");
        if i >= WARM_UP {
            times.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    drop(stream);
    child.wait().expect("the echo ends");
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "{{\"what\":\"tcp_floor\",\"pinned\":{pin},\"work_us\":{work_us},\"round_trips\":{ROUND_TRIPS},\"p50_us\":{:.1},\"p90_us\":{:.1},\"p99_us\":{:.1}}}",
        at(0.5),
        at(0.9),
        at(0.99)
    );
}

/// The value after `name`, if given.
fn option<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(String::as_str)
}

/// The other process: sends back every message, after `work` of busy
/// waiting, until the stream ends.
fn echo(port: &str, work: Duration) {
    let mut stream = TcpStream::connect(("127.0.0.1", port.parse::<u16>().expect("port"))).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut buf = [0u8; MESSAGE];
    while stream.read_exact(&mut buf).is_ok() {
        let start = Instant::now();
        while start.elapsed() < work {
            std::hint::spin_loop();
        }
        if stream.write_all(&buf).is_err() {
            return;
        }
    }
}
