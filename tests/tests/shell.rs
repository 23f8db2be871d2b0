//! What a shell user gets from the binary itself (issue 11): completion
//! scripts for the usual shells, and a version that names the commit.

use meshwork_tests::procs::Proc;
use std::time::Duration;

/// Start of a large debug binary on a busy machine.
const T: Duration = Duration::from_secs(60);

#[test]
fn completions_are_written_for_bash_zsh_and_fish() {
    // Each script in its shell's own form, knowing the subcommands and a
    // task's options (so it is generated from the real parser).
    for (shell, form) in
        [("bash", "complete -F _meshwork"), ("zsh", "#compdef meshwork"), ("fish", "complete -c meshwork")]
    {
        let (code, script) = Proc::start(&["completions", shell]).output(T).unwrap();
        assert_eq!(code, 0, "meshwork completions {shell}");
        for word in [form, "mandelbrot", "min-peers", "secret-file"] {
            assert!(script.contains(word), "the {shell} script has {word:?}");
        }
    }
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let (code, out) = Proc::start(&["--version"]).output(T).unwrap();
    assert_eq!(code, 0);
    let version = env!("CARGO_PKG_VERSION");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match commit {
        Some(commit) => assert_eq!(out, format!("meshwork {version} ({commit})")),
        // Built outside a git checkout: the package version alone.
        None => assert_eq!(out, format!("meshwork {version}")),
    }
}
