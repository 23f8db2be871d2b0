//! The module loader, fuzzed without a fuzzer: valid modules, damaged by
//! seeded random mutations, go down the path a worker's pieces take (a
//! piece decoded from CBOR, its module fetched into the cache, checked,
//! compiled, and run when it compiles). A cargo-fuzz target would cost CI
//! minutes it does not have; this costs seconds and is the same every run.
//!
//! Whatever the bytes, a piece ends in its output or a typed error: never
//! a panic (which would take the executor thread with it), never an
//! instance kept from the pool (the next piece would find the node busy),
//! never a different answer when it runs again.

use super::super::cache::{ModuleCache, ModuleId, COMPILED_KEPT};
use super::super::task::{ModuleFetcher, Wasm, WasmJob};
use super::*;
use meshwork_protocol::task::{encode_pieces, Runner, Task, TaskError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

/// Mutated modules tried: about 11 s in a debug build (some 900 a second).
const ITERATIONS: u32 = 10_000;
/// The seed: change it to explore further, keep it to reproduce.
const SEED: u64 = 13;
/// How long a mutated guest may run before it is cancelled (a flipped
/// branch easily makes an endless loop).
const RUN_BUDGET: Duration = Duration::from_millis(50);

/// Modules to mutate: the honest guests of these tests and one that uses
/// every section kind, so that mutations reach each part of the loader.
fn seeds() -> Vec<Vec<u8>> {
    let kitchen_sink = format!(
        r#"(module {PRELUDE}
  (type $binop (func (param i32 i32) (result i32)))
  (global $count (mut i32) (i32.const 0))
  (global $base i64 (i64.const 0x7fff_ffff_ffff))
  (table 4 funcref)
  (elem (i32.const 0) $add $sub $mul)
  (data (i32.const 128) "0123456789\n")
  (func $add (type $binop) (i32.add (local.get 0) (local.get 1)))
  (func $sub (type $binop) (i32.sub (local.get 0) (local.get 1)))
  (func $mul (type $binop) (i32.mul (local.get 0) (local.get 1)))
  (func $init (global.set $count (i32.const 2)))
  (start $init)
  (func (export "_start") (local $i i32) (local $acc i32)
    (drop (memory.grow (i32.const 1)))
    (loop $l
      (local.set $acc
        (call_indirect (type $binop) (local.get $acc) (i32.add (local.get $i) (global.get $count))
          (i32.rem_u (local.get $i) (i32.const 3))))
      (br_table 0 1 (i32.ge_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 20))))
    (i32.store8 (i32.const 128) (i32.add (i32.const 48) (i32.rem_u (local.get $acc) (i32.const 10))))
    (drop (call $write (i32.const 1) (i32.const 128) (i32.const 11)))
    (if (i64.eqz (global.get $base)) (then (call $proc_exit (i32.const 4)))))
  (@custom "meshwork" "a custom section"))"#
    );
    let random = format!(
        r#"(module {PRELUDE}
  (func (export "_start")
    (drop (call $random_get (i32.const 64) (i32.const 16)))
    (drop (call $write (i32.const 1) (i32.const 64) (i32.const 16)))))"#
    );
    [upper_cat(), random, kitchen_sink].iter().map(|w| wat::parse_str(w).expect("valid WAT")).collect()
}

/// The byte ranges of a module's sections (id, size, contents), if its
/// framing parses.
fn sections(module: &[u8]) -> Option<Vec<Range<usize>>> {
    let mut at = 8;
    let mut found = Vec::new();
    while at < module.len() {
        let (size, len) = leb128(&module[at + 1..])?;
        let end = (at + 1 + len).checked_add(usize::try_from(size).ok()?)?;
        found.push(at..end);
        at = end;
    }
    (at == module.len() && !found.is_empty()).then_some(found)
}

/// An unsigned LEB128 number and the bytes it took, if it ends.
fn leb128(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Junk a decoder may trip on: an edge value in LEB128, sometimes padded
/// to more bytes than it needs, sometimes never ending.
fn junk_leb(rng: &mut StdRng) -> Vec<u8> {
    const EDGES: [u64; 8] = [0, 1, 0x7f, 0x80, 0x3fff, u32::MAX as u64, 1 << 32, u64::MAX];
    let mut value = EDGES[rng.random_range(0..EDGES.len())];
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            // Padded: continuation bytes of zero bits before the last one.
            for _ in 0..rng.random_range(0..4) {
                out.push(byte | 0x80);
            }
            out.push(if rng.random_bool(0.1) { byte | 0x80 } else { byte });
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Damages `module` one way, using `seeds` for splices; what it did.
fn mutate(rng: &mut StdRng, module: &mut Vec<u8>, seeds: &[Vec<u8>]) -> &'static str {
    if module.is_empty() {
        module.extend(&seeds[0][..8]);
    }
    let at = rng.random_range(0..module.len());
    match rng.random_range(0..6) {
        0 => {
            module[at] ^= 1 << rng.random_range(0..8);
            "bit flip"
        }
        1 => {
            const EDGES: [u8; 6] = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0b];
            module[at] = if rng.random_bool(0.5) { EDGES[rng.random_range(0..EDGES.len())] } else { rng.random() };
            "byte set"
        }
        2 => {
            module.truncate(at);
            "truncation"
        }
        3 => {
            let junk = junk_leb(rng);
            module.splice(at..at, junk);
            "LEB128 inserted"
        }
        4 => {
            // A section's size replaced by junk, when the module still parses.
            let Some(s) = sections(module).map(|s| s[rng.random_range(0..s.len())].clone()) else {
                return mutate(rng, module, seeds);
            };
            let (_, len) = leb128(&module[s.start + 1..]).expect("a section's size parsed");
            let junk = junk_leb(rng);
            module.splice(s.start + 1..s.start + 1 + len, junk);
            "section size replaced"
        }
        _ => {
            // A section of any seed put in at a section boundary (out of
            // order, twice, or in place of one).
            let donor = &seeds[rng.random_range(0..seeds.len())];
            let theirs = sections(donor).expect("a seed parses");
            let section = donor[theirs[rng.random_range(0..theirs.len())].clone()].to_vec();
            let ours = sections(module).unwrap_or_default();
            let into = match ours.len() {
                0 => 8.min(module.len())..8.min(module.len()),
                n => {
                    let s = ours[rng.random_range(0..n)].clone();
                    if rng.random_bool(0.5) {
                        s
                    } else {
                        s.start..s.start
                    }
                }
            };
            module.splice(into, section);
            "section spliced"
        }
    }
}

/// Offers whatever module the test put in it, as a submitter would.
#[derive(Default)]
struct Submitter(Mutex<Vec<u8>>);

impl ModuleFetcher for Submitter {
    fn fetch(&self, _from: &[u8], id: ModuleId) -> Result<Vec<u8>, String> {
        let bytes = self.0.lock().unwrap().clone();
        (ModuleId::of(&bytes) == id).then_some(bytes).ok_or_else(|| format!("no module {id}"))
    }
}

/// Runs one encoded piece as a worker's executor does, cancelled past
/// [`RUN_BUDGET`]; whether it was cancelled, and its outcome.
fn run_piece(task: &Wasm, piece: &[u8]) -> (bool, Result<Vec<u8>, TaskError>) {
    let cancel = CancelFlag::new();
    let (done, timer) = std::sync::mpsc::channel::<()>();
    let outcome = std::thread::scope(|s| {
        let flag = cancel.clone();
        s.spawn(move || {
            if timer.recv_timeout(RUN_BUDGET).is_err() {
                flag.cancel();
            }
        });
        let outcome = task.run_encoded(piece, &cancel).map(|o| o.bytes);
        let _ = done.send(());
        outcome
    });
    (cancel.is_cancelled(), outcome)
}

/// What a guest's failure may say: [`GuestError`]'s messages, nothing else.
const GUEST_FAILURES: [&str; 4] = ["invalid module: ", "module of ", "trapped: ", "exited with code "];

#[test]
fn damaged_modules_fail_their_piece_with_a_typed_error_and_never_take_the_node_down() {
    let seeds = seeds();
    let submitter = Arc::new(Submitter::default());
    // One instance: a piece that kept its instance would make every later
    // piece fail with `Busy`.
    let cache = Arc::new(ModuleCache::new(sandbox_of(1), None, 0).unwrap());
    let task = Wasm::new(cache.clone(), submitter.clone());
    let mut rng = StdRng::seed_from_u64(SEED);
    let (mut compiled, mut ran) = (0, 0);
    let started = Instant::now();
    for i in 0..ITERATIONS {
        let mut module = seeds[rng.random_range(0..seeds.len())].clone();
        // Mostly one mutation: each one more leaves fewer modules that
        // compile, and so fewer that reach the runtime.
        let mutations = [1, 1, 1, 2, 3][rng.random_range(0..5)];
        let how: Vec<&str> = (0..mutations).map(|_| mutate(&mut rng, &mut module, &seeds)).collect();
        *submitter.0.lock().unwrap() = module.clone();
        let job = WasmJob {
            module: ModuleId::of(&module),
            from: b"submitter".to_vec(),
            args: vec!["arg".into()],
            inputs: vec![b"some input\n".to_vec()],
        };
        let piece = encode_pieces::<Wasm>(&task.split(&job).unwrap()).remove(0);
        let tried = catch_unwind(AssertUnwindSafe(|| [run_piece(&task, &piece), run_piece(&task, &piece)]));
        let keep = |why: &str| -> String {
            let path = std::env::temp_dir().join(format!("meshwork-fuzz-{SEED}-{i}.wasm"));
            std::fs::write(&path, &module).unwrap();
            format!("iteration {i} ({how:?}, kept in {}): {why}", path.display())
        };
        let Ok([(cut_first, first), (cut_again, again)]) = tried else { panic!("{}", keep("the piece panicked")) };
        for outcome in [&first, &again] {
            match outcome {
                Ok(_) | Err(TaskError::Cancelled) => {}
                Err(TaskError::Repeats(m)) if GUEST_FAILURES.iter().any(|f| m.starts_with(f)) => {}
                Err(e) => panic!("{}", keep(&format!("not a guest's failure: {e:?}"))),
            }
        }
        if !(cut_first || cut_again) {
            // A guest sees the same world on every run: a retried piece
            // must give the same answer.
            assert_eq!(first, again, "{}", keep("two runs differ"));
        }
        let invalid =
            matches!(&first, Err(TaskError::Repeats(m)) if m.starts_with("invalid") || m.starts_with("module of"));
        compiled += u32::from(!invalid);
        ran += u32::from(first.is_ok());
    }
    let took = started.elapsed();
    eprintln!(
        "{ITERATIONS} mutated modules in {took:.1?} ({:.0}/s): {compiled} compiled, {ran} ran to completion",
        f64::from(ITERATIONS) / took.as_secs_f64()
    );
    // Modules that never load hold nothing: a submitter sending garbage
    // under ever new ids must not grow a worker's memory.
    assert!(cache.slots() <= COMPILED_KEPT, "{} module slots kept", cache.slots());
    // The mutations must leave some modules loadable, or only the parser
    // was tested.
    assert!(compiled > ITERATIONS / 20, "only {compiled} of {ITERATIONS} compiled");
}
