//! WebAssembly guests for the tests: the C examples of `examples/wasm/`,
//! built with a real wasm32-wasi compiler as README tells a user to, and
//! hostile modules written in WAT.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What installs the C compiler on Debian (`.ci/run` installs it).
pub const INSTALL: &str = "apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32";

/// Debian's Rust, not rustup's first on PATH: rustup cannot add targets
/// here, Debian's wasm32 standard library can.
const RUSTC: &str = "/usr/bin/rustc";

/// What installs Debian's Rust for wasm32-wasi (`.ci/run` installs it).
pub const INSTALL_RUST: &str = "apt-get install -y rustc libstd-rust-dev-wasm32";

/// `examples/wasm/<name>.c` built into `<dir>/<name>.wasm`; its path. A
/// missing compiler fails the test with the command that installs it.
pub fn build_c(name: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("{name}.wasm"));
    build(Command::new("clang").args(["--target=wasm32-wasi", "-O2"]), &format!("{name}.c"), &out, INSTALL);
    out
}

/// `examples/wasm/<name>.rs` built into `<dir>/<name>-rs.wasm`, as its
/// header says; its path. A missing compiler or target fails the test with
/// the command that installs them.
pub fn build_rust(name: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("{name}-rs.wasm"));
    let mut rustc = Command::new(RUSTC);
    rustc.args(["--target", "wasm32-wasi", "-C", "opt-level=3", "-C", "strip=symbols"]);
    build(&mut rustc, &format!("{name}.rs"), &out, INSTALL_RUST);
    out
}

/// Runs `compiler -o out examples/wasm/<source>`; fails with `install` when
/// the compiler is missing or cannot build it.
fn build(compiler: &mut Command, source: &str, out: &Path, install: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/wasm").join(source);
    let name = format!("{:?}", compiler.get_program());
    let status = compiler
        .arg("-o")
        .arg(out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("{name} ({e}): this test needs a wasm32-wasi compiler: {install}"));
    assert!(status.success(), "{name} could not build {}: {install}", src.display());
}

/// The module `wat` describes, written to `<dir>/<name>.wasm`; its path.
pub fn write_wat(name: &str, wat: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("{name}.wasm"));
    std::fs::write(&out, wat::parse_str(wat).expect("valid WAT")).expect("writing a module");
    out
}

/// A fresh directory for one test's modules and files.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("meshwork-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

/// The primes below `n`, counted with a sieve: what a prime-counting job
/// over `0..n` must find.
pub fn primes_below(n: usize) -> u64 {
    let mut composite = vec![false; n];
    let mut count = 0;
    for i in 2..n {
        if !composite[i] {
            count += 1;
            for m in (i.saturating_mul(i)..n).step_by(i) {
                composite[m] = true;
            }
        }
    }
    count
}
