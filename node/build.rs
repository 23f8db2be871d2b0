//! Puts the git commit the binary is built from into its version
//! (`meshwork --version`: `meshwork 0.1.0 (abc1234)`), so a bug report
//! says which code it is about. Outside a git checkout (a source tarball,
//! a crate download) the version is the package's alone.
//!
//! Also packs the `meshwork` binary's relative relocations (DT_RELR) where
//! the C library can load them: see [`packed_relocations`].

use std::path::PathBuf;
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
}

/// Whether to link with packed relative relocations: the loader then reads
/// about 20 KiB of them instead of 1.9 MiB of `.rela.dyn` at each start,
/// pages that would stay resident: 1.9 MB less RSS for every idle node. Only
/// for a build on a GNU/Linux host for itself whose glibc is 2.36 or later
/// (an older one cannot load such a binary).
fn packed_relocations() -> bool {
    let var = |name| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" || var("TARGET") != var("HOST") {
        return false;
    }
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else { return false };
    // "glibc 2.36"
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.trim().trim_start_matches("glibc ").split('.').map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (2, 36)
}

/// What `git <args>` prints (trimmed), if git is there and succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
