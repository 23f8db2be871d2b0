//! Whether the LAN lab can run here: it needs root (namespaces, veths,
//! nftables), `ip` with network namespaces (iproute2) and `nft`
//! (nftables). Without them the LAN tests skip with a message, so
//! `cargo test` works on a laptop; under `CI=true` they fail instead, so
//! a CI run that tests nothing cannot pass.

use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// True when the lab can run. Otherwise: panics under `CI=true`; else
/// says why (once, straight to stderr, past the harness's capture) and
/// returns false, and the test returns early.
pub fn can_run() -> bool {
    static MISSING: OnceLock<Option<String>> = OnceLock::new();
    let Some(why) = MISSING.get_or_init(missing) else { return true };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and the LAN lab cannot run: {why}");
    }
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the LAN lab tests cannot run here: {why}; run `sudo -E cargo test -p meshwork-tests --test lan --test lan_scale` \
             on a machine with iproute2 and nftables to include them"
        );
    });
    false
}

/// What is missing, in words, or None.
fn missing() -> Option<String> {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Some("they need root (network namespaces, veths, nftables)".into());
    }
    if !runs("ip", &["netns", "list"]) {
        return Some("`ip netns` does not work (iproute2 missing, or a kernel without network namespaces)".into());
    }
    if !runs("nft", &["--version"]) {
        return Some("`nft` is missing (install nftables)".into());
    }
    None
}

/// Whether `cmd args` runs and succeeds.
fn runs(cmd: &str, args: &[&str]) -> bool {
    let quiet = || Stdio::null();
    Command::new(cmd).args(args).stdout(quiet()).stderr(quiet()).status().is_ok_and(|s| s.success())
}
