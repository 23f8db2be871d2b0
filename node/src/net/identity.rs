//! Node identities: an ed25519 keypair kept in a file (mode 0600), so a
//! node keeps its peer id across restarts.
//!
//! The file is locked (flock(2)) for as long as the node runs: two nodes
//! sharing one identity would look like one peer to the mesh, each
//! receiving the other's work and answers. The kernel drops the lock when
//! the process ends, however it ends, so a crash never leaves it stale.

use anyhow::Context;
use libp2p::identity::Keypair;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why an identity file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Another process (a node on this machine) holds the file's lock.
    #[error("identity file {0} is in use by another meshwork process (each node needs its own --identity)")]
    InUse(PathBuf),
    /// The file holds something else than a keypair.
    #[error("{0} is not a meshwork identity file")]
    NotAnIdentity(PathBuf, #[source] libp2p::identity::DecodingError),
    /// Reading, creating or locking the file failed.
    #[error("identity file {0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
}

/// A node's keypair and, when it came from a file, that file held locked.
#[derive(Debug)]
pub struct Identity {
    /// The keypair.
    pub key: Keypair,
    /// The open file whose lock is ours while this lives (None: a keypair
    /// of this process only, saved nowhere).
    _lock: Option<File>,
}

impl Identity {
    /// A new keypair for this process only, saved nowhere.
    pub fn ephemeral() -> Identity {
        Identity { key: Keypair::generate_ed25519(), _lock: None }
    }
}

/// Where `meshwork node` keeps its key when `--identity` is not given.
pub fn default_path() -> PathBuf {
    dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("meshwork").join("identity.key")
}

/// Locks the keypair file at `path` and loads it, creating it (mode 0600)
/// if absent or empty. [`IdentityError::InUse`] if another process holds it.
pub fn load_or_create(path: &Path) -> Result<Identity, IdentityError> {
    let io = |e| IdentityError::Io(path.to_path_buf(), e);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io)?;
    }
    // Open (or create) before reading, and read only once locked: of two
    // nodes starting at once, one creates the key and the other is refused,
    // rather than reading a half-written file.
    let mut file =
        match fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => File::open(path),
            opened => opened,
        }
        .map_err(io)?;
    // SAFETY: flock(2) on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(match e.kind() {
            std::io::ErrorKind::WouldBlock => IdentityError::InUse(path.to_path_buf()),
            _ => io(e),
        });
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    if bytes.is_empty() {
        // New, or left empty by a process that died while writing it.
        let key = Keypair::generate_ed25519();
        let encoded = key.to_protobuf_encoding().map_err(|e| io(std::io::Error::other(e)))?;
        file.write_all(&encoded).and_then(|()| file.sync_all()).map_err(io)?;
        tracing::info!(path = %path.display(), peer = %key.public().to_peer_id(), "created a new identity");
        return Ok(Identity { key, _lock: Some(file) });
    }
    let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "identity file is readable by others");
    }
    let key =
        Keypair::from_protobuf_encoding(&bytes).map_err(|e| IdentityError::NotAnIdentity(path.to_path_buf(), e))?;
    Ok(Identity { key, _lock: Some(file) })
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
        let a = load_or_create(&path).unwrap().key.public().to_peer_id();
        let b = load_or_create(&path).unwrap().key.public().to_peer_id();
        assert_eq!(a, b);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        fs::write(&path, b"junk").unwrap();
        assert!(load_or_create(&path).unwrap_err().to_string().contains("not a meshwork identity file"));
        assert!(write_private(&path, b"x", false).is_err(), "refuses to overwrite");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_file_in_use_is_refused_until_released() {
        let path = std::env::temp_dir().join(format!("mw-id-lock-{}.key", std::process::id()));
        let held = load_or_create(&path).unwrap();
        let err = load_or_create(&path).unwrap_err();
        assert!(matches!(&err, IdentityError::InUse(p) if *p == path), "{err}");
        drop(held);
        assert!(load_or_create(&path).is_ok(), "the lock goes with the identity");
        fs::remove_file(&path).unwrap();
    }
}
