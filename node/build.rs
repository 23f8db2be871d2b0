//! Puts the git commit the binary is built from into its version
//! (`meshwork --version`: `meshwork 0.1.0 (abc1234)`), so a bug report
//! says which code it is about. Outside a git checkout (a source tarball,
//! a crate download) the version is the package's alone.

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
}

/// What `git <args>` prints (trimmed), if git is there and succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
