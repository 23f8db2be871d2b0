//! `meshwork keygen`: a 32-byte pre-shared key for a private mesh, in the
//! libp2p swarm-key file format, readable only by its owner.

use crate::net::identity::write_private;
use anyhow::Context;
use clap::Args;
use libp2p::pnet::PreSharedKey;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `meshwork keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key (refuses to overwrite an existing file).
    pub path: PathBuf,
}

pub(super) fn run(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    let key: [u8; 32] = rand::random();
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let text = format!("/key/swarm/psk/1.0.0/\n/base16/\n{hex}\n");
    write_private(&args.path, text.as_bytes(), false)?;
    let psk = PreSharedKey::new(key);
    println!("wrote {} (fingerprint {})", args.path.display(), psk.fingerprint());
    Ok(ExitCode::SUCCESS)
}

/// Reads a key written by `keygen`.
pub(super) fn read(path: &Path) -> anyhow::Result<PreSharedKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading secret file {}", path.display()))?;
    text.parse::<PreSharedKey>().map_err(|e| anyhow::anyhow!("{} is not a meshwork secret file: {e:?}", path.display()))
}
