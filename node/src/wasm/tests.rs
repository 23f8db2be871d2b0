//! Hostile and honest guests, written in WAT, against the sandbox.

use super::*;
use meshwork_protocol::task::CancelFlag;
use std::time::{Duration, Instant};

/// A module from WAT text (the `wat` crate, as a user's compiler would).
fn module(sandbox: &Sandbox, wat: &str) -> Result<Guest, GuestError> {
    sandbox.compile(&wat::parse_str(wat).expect("valid WAT"))
}

fn sandbox() -> Sandbox {
    sandbox_of(8)
}

/// A sandbox running at most `instances` guests at once.
fn sandbox_of(instances: u32) -> Sandbox {
    Sandbox::new(Limits { memory: 4 << 20, module: 1 << 20, output: 1 << 16, stderr: 1 << 10 }, instances).unwrap()
}

/// Waits (at most 10 s) until `n` guests of `sandbox` run.
fn wait_running(sandbox: &Sandbox, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sandbox.running() < n {
        assert!(Instant::now() < deadline, "the guest never started");
        std::thread::yield_now();
    }
}

fn call(stdin: &[u8]) -> PieceCall<'_> {
    PieceCall { stdin, piece: 3, pieces: 8, ..PieceCall::default() }
}

/// WASI imports and a `write(ptr, len)` helper to stdout (fd 1) or any fd.
const PRELUDE: &str = r#"
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0 (ptr, len), count written at 8, data from 64.
  (func $write (param $fd i32) (param $ptr i32) (param $len i32) (result i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
"#;

/// Copies stdin to stdout, upper-casing ASCII letters: an honest guest
/// whose output depends on its piece.
fn upper_cat() -> String {
    format!(
        r#"(module {PRELUDE}
  (func (export "_start") (local $n i32) (local $i i32) (local $c i32)
    (loop $more
      (i32.store (i32.const 0) (i32.const 64))
      (i32.store (i32.const 4) (i32.const 4096))
      (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $n (i32.load (i32.const 8)))
      (if (i32.gt_u (local.get $n) (i32.const 0)) (then
        (local.set $i (i32.const 0))
        (loop $each
          (local.set $c (i32.load8_u (i32.add (i32.const 64) (local.get $i))))
          (if (i32.and (i32.ge_u (local.get $c) (i32.const 97)) (i32.le_u (local.get $c) (i32.const 122)))
            (then (i32.store8 (i32.add (i32.const 64) (local.get $i)) (i32.sub (local.get $c) (i32.const 32)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $each (i32.lt_u (local.get $i) (local.get $n))))
        (drop (call $write (i32.const 1) (i32.const 64) (local.get $n)))
        (br $more))))))"#
    )
}

#[test]
fn an_honest_guest_turns_each_piece_into_its_own_output() {
    let sandbox = sandbox();
    let guest = module(&sandbox, &upper_cat()).unwrap();
    for input in [&b"hello, mesh"[..], b"piece two", b""] {
        let out = sandbox.run(&guest, &call(input), &CancelFlag::new()).unwrap();
        assert_eq!(out, input.to_ascii_uppercase());
    }
}

#[test]
fn randomness_repeats_for_a_piece_and_differs_between_pieces() {
    let sandbox = sandbox();
    let wat = format!(
        r#"(module {PRELUDE}
  (func (export "_start")
    (drop (call $random_get (i32.const 64) (i32.const 32)))
    (drop (call $write (i32.const 1) (i32.const 64) (i32.const 32)))))"#
    );
    let guest = module(&sandbox, &wat).unwrap();
    let run = |piece| sandbox.run(&guest, &PieceCall { piece, ..call(b"") }, &CancelFlag::new()).unwrap();
    assert_eq!(run(1), run(1), "a retried piece must see the same random bytes");
    assert_ne!(run(1), run(2), "two pieces must not share one random sequence");
}

#[test]
fn a_non_zero_exit_fails_the_piece_with_its_code_and_stderr() {
    let sandbox = sandbox();
    let wat = format!(
        r#"(module {PRELUDE}
  (data (i32.const 64) "first line\nbad input at byte 7\n")
  (func (export "_start")
    (drop (call $write (i32.const 2) (i32.const 64) (i32.const 31)))
    (call $proc_exit (i32.const 3))))"#
    );
    let guest = module(&sandbox, &wat).unwrap();
    let err = sandbox.run(&guest, &call(b""), &CancelFlag::new()).unwrap_err();
    assert_eq!(err, GuestError::Exit { code: 3, stderr: "first line\nbad input at byte 7".into() });
    assert!(err.repeats());
}

#[test]
fn an_endless_loop_stops_within_milliseconds_of_its_cancel() {
    let sandbox = sandbox();
    let guest = module(&sandbox, r#"(module (func (export "_start") (loop $l (br $l))))"#).unwrap();
    let cancel = CancelFlag::new();
    let flag = cancel.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let sandbox = sandbox.clone();
        std::thread::spawn(move || tx.send(sandbox.run(&guest, &call(b""), &flag)));
    }
    // Cancel only once the guest runs: a flag set before it started would
    // stop it without testing the interruption.
    wait_running(&sandbox, 1);
    let cancelled = Instant::now();
    cancel.cancel();
    let result = rx.recv_timeout(Duration::from_secs(10)).expect("the endless loop still runs 10 s after its cancel");
    let stopped = cancelled.elapsed();
    assert_eq!(result, Err(GuestError::Cancelled));
    assert!(!GuestError::Cancelled.repeats(), "a cancelled piece may be run again elsewhere");
    assert!(stopped < Duration::from_millis(500), "the loop ran on for {stopped:?} after its cancel");
}

#[test]
fn a_full_pool_of_instances_fails_a_piece_in_a_way_worth_retrying_elsewhere() {
    let sandbox = sandbox_of(1);
    let endless = module(&sandbox, r#"(module (func (export "_start") (loop $l (br $l))))"#).unwrap();
    let honest = module(&sandbox, &upper_cat()).unwrap();
    let cancel = CancelFlag::new();
    let running = {
        let (sandbox, flag) = (sandbox.clone(), cancel.clone());
        std::thread::spawn(move || sandbox.run(&endless, &call(b""), &flag))
    };
    wait_running(&sandbox, 1);
    let err = sandbox.run(&honest, &call(b"x"), &CancelFlag::new()).unwrap_err();
    assert_eq!(err, GuestError::Busy(1));
    assert!(!err.repeats(), "another node (or this one, later) may run it");
    cancel.cancel();
    assert_eq!(running.join().unwrap(), Err(GuestError::Cancelled));
    // Its instance went back to the pool.
    assert_eq!(sandbox.run(&honest, &call(b"x"), &CancelFlag::new()).unwrap(), b"X");
}

#[test]
fn a_memory_bomb_traps_at_the_memory_limit() {
    let sandbox = sandbox();
    let wat = r#"(module (memory 1)
  (func (export "_start") (loop $l (drop (memory.grow (i32.const 16))) (br $l))))"#;
    let guest = module(&sandbox, wat).unwrap();
    let err = sandbox.run(&guest, &call(b""), &CancelFlag::new()).unwrap_err();
    assert!(matches!(&err, GuestError::Trapped { reason, .. } if reason.contains("memory")), "{err}");
}

#[test]
fn output_past_its_cap_traps_instead_of_filling_the_node() {
    let sandbox = sandbox();
    let wat = format!(
        r#"(module {PRELUDE}
  (func (export "_start") (loop $l (drop (call $write (i32.const 1) (i32.const 64) (i32.const 4096))) (br $l))))"#
    );
    let guest = module(&sandbox, &wat).unwrap();
    let err = sandbox.run(&guest, &call(b""), &CancelFlag::new()).unwrap_err();
    assert!(matches!(err, GuestError::Trapped { .. }), "{err}");
}

#[test]
fn endless_recursion_traps_on_the_stack_limit() {
    let sandbox = sandbox();
    let wat = r#"(module
  (func $down (param i64) (result i64) (i64.add (call $down (local.get 0)) (i64.const 1)))
  (func (export "_start") (drop (call $down (i64.const 0)))))"#;
    let guest = module(&sandbox, wat).unwrap();
    let err = sandbox.run(&guest, &call(b""), &CancelFlag::new()).unwrap_err();
    assert!(matches!(&err, GuestError::Trapped { reason, .. } if reason.contains("stack")), "{err}");
}

#[test]
fn a_module_importing_more_than_wasi_is_refused_before_it_runs() {
    let sandbox = sandbox();
    let wat = r#"(module (import "env" "open_socket" (func)) (func (export "_start")))"#;
    let err = module(&sandbox, wat).unwrap_err();
    assert!(matches!(&err, GuestError::Invalid(m) if m.contains("open_socket")), "{err}");
    assert!(err.repeats());
}

#[test]
fn garbage_oversized_and_entry_less_modules_are_refused() {
    let sandbox = sandbox();
    assert!(matches!(sandbox.compile(b"\0asm but not really"), Err(GuestError::Invalid(_))));
    let big = vec![0u8; sandbox.limits().module + 1];
    assert!(matches!(sandbox.compile(&big), Err(GuestError::ModuleTooLarge { .. })));
    let err = module(&sandbox, "(module)").unwrap_err();
    assert!(matches!(&err, GuestError::Invalid(m) if m.contains("_start")), "{err}");
}

mod cache {
    use super::super::cache::{CacheError, ModuleCache, ModuleId, LOADING_MODULES};
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};

    fn counts(cache: &ModuleCache) -> (u64, u64) {
        (cache.stats.fetches.load(Ordering::Relaxed), cache.stats.compiles.load(Ordering::Relaxed))
    }

    fn wasm() -> Vec<u8> {
        wat::parse_str(upper_cat()).unwrap()
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("meshwork-wasm-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_module_is_fetched_and_compiled_once_however_many_pieces_use_it() {
        let cache = ModuleCache::new(sandbox(), None, 1 << 20).unwrap();
        let bytes = wasm();
        let id = ModuleId::of(&bytes);
        for _ in 0..5 {
            let guest = cache.guest(id, || Ok(bytes.clone())).unwrap();
            assert_eq!(cache.sandbox().run(&guest, &call(b"ab"), &CancelFlag::new()).unwrap(), b"AB");
        }
        assert_eq!(counts(&cache), (1, 1));
    }

    #[test]
    fn pieces_arriving_together_wait_for_one_fetch() {
        const PIECES: usize = 8;
        let cache = Arc::new(ModuleCache::new(sandbox(), None, 1 << 20).unwrap());
        let bytes = Arc::new(wasm());
        let id = ModuleId::of(&bytes);
        let arrived = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..PIECES)
            .map(|_| {
                let (cache, bytes, arrived) = (cache.clone(), bytes.clone(), arrived.clone());
                std::thread::spawn(move || {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    cache.guest(id, || {
                        // The fetch is in progress until every piece has
                        // asked: a cache that fetched per piece would fetch
                        // once for each of them.
                        let deadline = Instant::now() + Duration::from_secs(10);
                        while arrived.load(Ordering::SeqCst) < PIECES && Instant::now() < deadline {
                            std::thread::yield_now();
                        }
                        Ok(bytes.to_vec())
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        assert_eq!(counts(&cache), (1, 1));
    }

    /// `n` distinct modules (different data segments).
    fn distinct(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                wat::parse_str(format!(r#"(module (memory 1) (data (i32.const 0) "{i}") (func (export "_start")))"#))
                    .unwrap()
            })
            .collect()
    }

    /// Fetches in progress on a cache, ended, and the most at once.
    #[derive(Default)]
    struct Fetching {
        now: AtomicUsize,
        ended: AtomicUsize,
        most: AtomicUsize,
    }

    impl Fetching {
        fn start(&self) {
            self.most.fetch_max(self.now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
        }

        fn end(&self) {
            self.ended.fetch_add(1, Ordering::SeqCst);
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn modules_fetched_at_once_stay_within_the_nodes_budget_and_the_others_wait() {
        const PIECES: usize = 6;
        let cache = Arc::new(ModuleCache::new(sandbox(), None, 1 << 20).unwrap());
        let modules = distinct(PIECES);
        let f = Arc::new(Fetching::default());
        let threads: Vec<_> = (modules.into_iter())
            .map(|bytes| {
                let (cache, f) = (cache.clone(), f.clone());
                std::thread::spawn(move || {
                    cache.guest(ModuleId::of(&bytes), || {
                        f.start();
                        // The fetch lasts until every piece is fetching,
                        // done, or held back by the budget: without a
                        // bound, until all fetch at once.
                        let settled = || {
                            f.now.load(Ordering::SeqCst) + f.ended.load(Ordering::SeqCst) + cache.loads_waiting()
                                >= PIECES
                        };
                        let deadline = Instant::now() + Duration::from_secs(10);
                        while !settled() && Instant::now() < deadline {
                            std::thread::yield_now();
                        }
                        f.end();
                        Ok(bytes.clone())
                    })
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().expect("a load held back waits, it does not fail");
        }
        // Each fetch may bring a module of the largest size: the budget
        // has room for LOADING_MODULES of them.
        assert_eq!(f.most.load(Ordering::SeqCst), LOADING_MODULES as usize);
        assert_eq!(counts(&cache), (PIECES as u64, PIECES as u64));
    }

    /// A piece asking `cache` for `id` on a thread of its own; its fetch
    /// says when it starts (`started`), then waits for `go` and gives
    /// `result`.
    struct Asker {
        started: mpsc::Receiver<()>,
        go: mpsc::Sender<()>,
        done: std::thread::JoinHandle<Result<(), CacheError>>,
    }

    fn ask(cache: &Arc<ModuleCache>, id: ModuleId, result: Result<Vec<u8>, String>, f: &Arc<Fetching>) -> Asker {
        let (started_tx, started) = mpsc::channel();
        let (go, go_rx) = mpsc::channel();
        let (cache, f) = (cache.clone(), f.clone());
        let done = std::thread::spawn(move || {
            let fetch = || {
                f.start();
                started_tx.send(()).unwrap();
                let _ = go_rx.recv_timeout(Duration::from_secs(10));
                f.end();
                result
            };
            cache.guest(id, fetch).map(drop)
        });
        Asker { started, go, done }
    }

    /// Waits (at most 10 s) until `ready`.
    fn wait_until(what: &str, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready() {
            assert!(Instant::now() < deadline, "{what} never happened");
            std::thread::yield_now();
        }
    }

    #[test]
    fn after_a_failed_fetch_the_pieces_waiting_and_arriving_still_fetch_one_at_a_time() {
        let cache = Arc::new(ModuleCache::new(sandbox(), None, 1 << 20).unwrap());
        let bytes = wasm();
        let id = ModuleId::of(&bytes);
        let f = Arc::new(Fetching::default());
        let started = |a: &Asker| a.started.recv_timeout(Duration::from_secs(10)).expect("a fetch starts");
        // A fetches and will fail; B waits for A's fetch meanwhile.
        let a = ask(&cache, id, Err("the submitter left".into()), &f);
        started(&a);
        let b = ask(&cache, id, Ok(bytes.clone()), &f);
        wait_until("B waiting on A", || cache.holders(id) == 2);
        // A fails and drops its slot: B fetches.
        a.go.send(()).unwrap();
        started(&b);
        // C arrives during B's fetch: it must wait on B's, not start its own.
        let c = ask(&cache, id, Ok(bytes.clone()), &f);
        wait_until("C waiting on B or fetching", || cache.holders(id) == 2 || f.most.load(Ordering::SeqCst) > 1);
        b.go.send(()).unwrap();
        let _ = c.go.send(());
        assert!(matches!(a.done.join().unwrap(), Err(CacheError::Fetch { .. })));
        b.done.join().unwrap().unwrap();
        c.done.join().unwrap().unwrap();
        assert_eq!(f.most.load(Ordering::SeqCst), 1, "two fetches of one module at once");
        assert_eq!(counts(&cache), (1, 1), "C found B's module");
    }

    #[test]
    fn wrong_or_missing_bytes_are_an_error_and_the_next_piece_fetches_again() {
        let cache = ModuleCache::new(sandbox(), None, 1 << 20).unwrap();
        let bytes = wasm();
        let id = ModuleId::of(&bytes);
        let err = cache.guest(id, || Err("the submitter left".into())).unwrap_err();
        assert!(matches!(err, CacheError::Fetch { .. }), "{err}");
        let err = cache.guest(id, || Ok(b"other bytes".to_vec())).unwrap_err();
        assert!(matches!(err, CacheError::WrongBytes { .. }), "{err}");
        cache.guest(id, || Ok(bytes.clone())).unwrap();
        assert_eq!(counts(&cache).1, 1);
    }

    #[test]
    fn a_restarted_node_finds_its_modules_on_disk_and_damaged_ones_are_fetched_again() {
        let dir = temp_dir("disk");
        let bytes = wasm();
        let id = ModuleId::of(&bytes);
        ModuleCache::new(sandbox(), Some(dir.clone()), 1 << 20).unwrap().guest(id, || Ok(bytes.clone())).unwrap();
        let again = ModuleCache::new(sandbox(), Some(dir.clone()), 1 << 20).unwrap();
        again.guest(id, || Err("must not be fetched".into())).unwrap();
        assert_eq!(counts(&again), (0, 1));
        std::fs::write(dir.join(format!("{id}.wasm")), b"damaged").unwrap();
        let third = ModuleCache::new(sandbox(), Some(dir.clone()), 1 << 20).unwrap();
        third.guest(id, || Ok(bytes.clone())).unwrap();
        assert_eq!(counts(&third), (1, 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_disk_keeps_the_most_recently_used_modules_within_its_bound() {
        let dir = temp_dir("evict");
        // Three distinct modules, room for two.
        let modules = distinct(3);
        let room = (modules[0].len() * 2) as u64;
        let cache = ModuleCache::new(sandbox(), Some(dir.clone()), room).unwrap();
        for m in &modules {
            cache.guest(ModuleId::of(m), || Ok(m.clone())).unwrap();
        }
        let kept: Vec<bool> = modules.iter().map(|m| dir.join(format!("{}.wasm", ModuleId::of(m))).exists()).collect();
        assert_eq!(kept, [false, true, true], "the oldest module goes first");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

mod task {
    use super::super::cache::{ModuleCache, ModuleId};
    use super::super::task::{ModuleFetcher, Wasm, WasmJob};
    use super::*;
    use crate::tasks::run_locally;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// The submitter's side of a fetch: its module, counting requests.
    struct Offer {
        bytes: Vec<u8>,
        asked: AtomicUsize,
    }

    impl ModuleFetcher for Offer {
        fn fetch(&self, from: &[u8], id: ModuleId) -> Result<Vec<u8>, String> {
            assert_eq!(from, b"submitter");
            self.asked.fetch_add(1, Ordering::SeqCst);
            (ModuleId::of(&self.bytes) == id).then(|| self.bytes.clone()).ok_or_else(|| "unknown module".into())
        }
    }

    #[test]
    fn a_wasm_job_runs_each_piece_on_its_own_input_and_a_second_job_fetches_nothing() {
        let bytes = wat::parse_str(upper_cat()).unwrap();
        let offer = Arc::new(Offer { bytes: bytes.clone(), asked: AtomicUsize::new(0) });
        let cache = Arc::new(ModuleCache::new(sandbox(), None, 1 << 20).unwrap());
        let task = Wasm::new(cache.clone(), offer.clone());
        let job = WasmJob {
            module: ModuleId::of(&bytes),
            from: b"submitter".to_vec(),
            args: vec![],
            inputs: vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()],
        };
        for _ in 0..2 {
            let outputs = run_locally(&task, &job).unwrap();
            assert_eq!(outputs, [b"ONE".to_vec(), b"TWO".to_vec(), b"THREE".to_vec()]);
        }
        assert_eq!(offer.asked.load(Ordering::SeqCst), 1, "the module crosses the network once per peer");
        assert_eq!(cache.stats.compiles.load(Ordering::Relaxed), 1, "and is compiled once");
    }

    #[test]
    fn a_node_builds_its_wasm_engine_only_when_the_first_piece_arrives() {
        let bytes = wat::parse_str(upper_cat()).unwrap();
        let offer = Arc::new(Offer { bytes: bytes.clone(), asked: AtomicUsize::new(0) });
        let built = Arc::new(AtomicUsize::new(0));
        let count = built.clone();
        let task = Wasm::lazy(
            move || {
                count.fetch_add(1, Ordering::SeqCst);
                Ok(ModuleCache::new(sandbox(), None, 1 << 20).unwrap())
            },
            offer,
        );
        assert_eq!(built.load(Ordering::SeqCst), 0, "nothing is built before a piece needs it");
        let job = WasmJob {
            module: ModuleId::of(&bytes),
            from: b"submitter".to_vec(),
            args: vec![],
            inputs: vec![b"a".to_vec(), b"b".to_vec()],
        };
        assert_eq!(run_locally(&task, &job).unwrap(), [b"A".to_vec(), b"B".to_vec()]);
        assert_eq!(built.load(Ordering::SeqCst), 1, "and it is built once");
    }
}

mod fuzz;
