//! Puts the git commit the binary is built from into its version
//! (`meshwork --version`: `meshwork 0.1.0 (abc1234)`), so a bug report
//! says which code it is about. Outside a git checkout (a source tarball,
//! a crate download) the version is the package's alone.
//!
//! Also links the `meshwork` binary so that an idle node maps little of
//! it: relocations packed ([`packed_relocations`]) and the functions an
//! idle node runs side by side ([`link_order`]).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    let full = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) => format!("{version} ({commit})"),
        None => version.to_string(),
    };
    println!("cargo:rustc-env=MESHWORK_VERSION={full}");
    // Run again when HEAD moves (a commit, a checkout, refs packed), and
    // only then. A file named here that does not exist would rerun the
    // script, and rebuild the crate, on every build.
    let mut watched = vec![PathBuf::from("build.rs")];
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watched.push(PathBuf::from(dir).join("HEAD"));
    }
    if let (Some(common), Some(head)) = (git(&["rev-parse", "--git-common-dir"]), git(&["symbolic-ref", "-q", "HEAD"]))
    {
        watched.extend([PathBuf::from(&common).join(head), PathBuf::from(common).join("packed-refs")]);
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    if packed_relocations() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed={LINK_ORDER}");
    let order = Path::new(&env("CARGO_MANIFEST_DIR")).join(LINK_ORDER);
    if order.exists() && link_order() {
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
        // Names the build does not have (another rustc, other dependency
        // versions) are skipped; they cost memory, not a failed build.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// The functions an idle node runs (starting, joining, idling), as
/// `benches/link_order.sh` profiled them.
const LINK_ORDER: &str = "link-order.txt";

/// Whether to hand the linker [`LINK_ORDER`]: laid out side by side, those
/// functions take a few hundred code pages instead of being spread over all
/// 21 MB of code, of which the kernel maps a block around every page run
/// (an idle node's resident code 12.6 → 3.5 MB). Only where the linker is
/// rustc's own LLD, the default for x86-64 GNU/Linux since Rust 1.90 (GNU
/// ld has no such option), and no linker was chosen in RUSTFLAGS.
fn link_order() -> bool {
    env("TARGET") == "x86_64-unknown-linux-gnu"
        && env("HOST") == env("TARGET")
        && !env("CARGO_ENCODED_RUSTFLAGS").contains("link")
        && env("RUSTC_LINKER").is_empty()
        && version(&env("RUSTC"), "--version") >= (1, 90)
}

/// Whether to link with packed relative relocations: the loader then reads
/// about 20 KiB of them instead of 1.9 MiB of `.rela.dyn` at each start,
/// pages that would stay resident: 1.9 MB less RSS for every idle node. Only
/// for a build on a GNU/Linux host for itself whose glibc is 2.36 or later
/// (an older one cannot load such a binary).
fn packed_relocations() -> bool {
    env("CARGO_CFG_TARGET_OS") == "linux"
        && env("CARGO_CFG_TARGET_ENV") == "gnu"
        && env("TARGET") == env("HOST")
        && version("getconf", "GNU_LIBC_VERSION") >= (2, 36)
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// The `(major, minor)` of the first `X.Y` word `program arg` prints
/// ("glibc 2.36", "rustc 1.95.0 (…)"); `(0, 0)` if none.
fn version(program: &str, arg: &str) -> (u32, u32) {
    let Ok(out) = Command::new(program).arg(arg).output() else { return (0, 0) };
    let text = String::from_utf8_lossy(&out.stdout);
    let parse = |word: &str| {
        let mut parts = word.split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    text.split_whitespace().find_map(parse).unwrap_or((0, 0))
}

/// What `git <args>` prints (trimmed), if git is there and succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
