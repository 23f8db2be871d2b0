//! Node identities: an ed25519 keypair kept in a file (mode 0600), so a
//! node keeps its peer id across restarts.

use anyhow::Context;
use libp2p::identity::Keypair;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where `meshwork node` keeps its key when `--identity` is not given.
pub fn default_path() -> PathBuf {
    dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("meshwork").join("identity.key")
}

/// Loads the keypair at `path`, creating it (mode 0600) if absent.
pub fn load_or_create(path: &Path) -> anyhow::Result<Keypair> {
    match fs::read(path) {
        Ok(bytes) => {
            let mode = fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "identity file is readable by others");
            }
            Keypair::from_protobuf_encoding(&bytes)
                .with_context(|| format!("{} is not a meshwork identity file", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            write_private(path, &key.to_protobuf_encoding().context("encoding the new identity")?, false)?;
            tracing::info!(path = %path.display(), peer = %key.public().to_peer_id(), "created a new identity");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading identity {}", path.display())),
    }
}

/// Writes `bytes` to a new file only its owner can read (refusing to
/// overwrite unless `overwrite`).
pub fn write_private(path: &Path, bytes: &[u8], overwrite: bool) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).mode(0o600);
    if overwrite {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut f = opts.open(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_persists_with_private_mode() {
        let dir = std::env::temp_dir().join(format!("mw-id-{}", std::process::id()));
        let path = dir.join("id.key");
        let a = load_or_create(&path).unwrap();
        let b = load_or_create(&path).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        fs::write(&path, b"junk").unwrap();
        assert!(load_or_create(&path).unwrap_err().to_string().contains("not a meshwork identity file"));
        assert!(write_private(&path, b"x", false).is_err(), "refuses to overwrite");
        fs::remove_dir_all(dir).unwrap();
    }
}
