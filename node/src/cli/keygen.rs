//! `meshwork keygen`: a pre-shared key for a private mesh, and reading it
//! back for `--secret-file`.
//!
//! The file is text, in the libp2p swarm-key format (what IPFS calls
//! `swarm.key`): the line `/key/swarm/psk/1.0.0/`, the line `/base16/`, and
//! the 32-byte key as 64 hex digits. It is written readable only by its
//! owner, never over an existing file nor into a directory that does not
//! exist; one readable by others is used with a warning, as an identity
//! file is.

use super::checks;
use crate::net::identity::write_private;
use clap::Args;
use libp2p::pnet::{KeyParseError, PreSharedKey};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What the file holds, for error messages.
const FORMAT: &str =
    "`meshwork keygen` writes three lines: /key/swarm/psk/1.0.0/, /base16/, then the key as 64 hex digits";

/// Arguments of `meshwork keygen`.
#[derive(Debug, Args)]
#[command(long_about = "Write a new pre-shared key for a private mesh.

The file is text in the libp2p swarm-key format: the lines /key/swarm/psk/1.0.0/ and
/base16/, then 32 random bytes as 64 hex digits. It is created readable only by you
(mode 0600); keygen never overwrites a file and does not create directories. Give
the same file to every node with --secret-file (or MESHWORK_SECRET_FILE).")]
pub struct KeygenArgs {
    /// Where to write the key: a new file in a directory that exists.
    #[arg(value_name = "PATH", value_parser = new_file)]
    pub path: PathBuf,
}

/// A path to create: nothing there yet, in a directory that exists and
/// may be written.
fn new_file(s: &str) -> Result<PathBuf, String> {
    if std::fs::symlink_metadata(s).is_ok() {
        return Err(format!("{s} already exists: keygen never overwrites a key (remove it, or choose another path)"));
    }
    checks::writable_file(s)
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

/// Why a `--secret-file` cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(super) enum SecretFileError {
    /// It cannot be read.
    #[error("cannot read secret file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not a key in the swarm-key format.
    #[error("{} is not a meshwork secret file: {what}; {FORMAT}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: &'static str,
    },
}

/// Reads a key written by `keygen`, warning if others may read it.
pub(super) fn read(path: &Path) -> Result<PreSharedKey, SecretFileError> {
    let io = |source| SecretFileError::Read { path: path.to_path_buf(), source };
    let bytes = std::fs::read(path).map_err(io)?;
    let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "secret file is readable by others");
    }
    parse(&bytes).map_err(|what| SecretFileError::Format { path: path.to_path_buf(), what })
}

/// The key in `bytes`, or what is wrong with them.
fn parse(bytes: &[u8]) -> Result<PreSharedKey, &'static str> {
    let text = std::str::from_utf8(bytes).map_err(|_| "it holds binary data, not text (a raw key?)")?;
    text.parse::<PreSharedKey>().map_err(|e| match e {
        KeyParseError::InvalidKeyFile => "it does not have three lines",
        KeyParseError::InvalidKeyType => "its first line is not /key/swarm/psk/1.0.0/",
        KeyParseError::InvalidKeyEncoding => "its second line is not /base16/",
        KeyParseError::InvalidKeyLength => "its key is not 64 hex digits (32 bytes)",
        KeyParseError::InvalidKeyChar(_) => "its key holds a character that is not a hex digit",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "/key/swarm/psk/1.0.0/\n/base16/\n000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

    #[test]
    fn each_way_a_secret_file_can_be_wrong_is_said_in_words() {
        assert!(parse(KEY.as_bytes()).is_ok());
        assert!(parse(&[0xff; 32]).unwrap_err().contains("binary data"), "a raw 32-byte key");
        assert!(parse(b"hello").unwrap_err().contains("three lines"));
        assert!(parse(KEY.replace("psk", "xyz").as_bytes()).unwrap_err().contains("first line"));
        assert!(parse(KEY.replace("base16", "base64").as_bytes()).unwrap_err().contains("second line"));
        assert!(parse(KEY.replace("1e1f\n", "\n").as_bytes()).unwrap_err().contains("64 hex digits"), "short");
        assert!(parse(KEY.replace("1e1f", "1e1g").as_bytes()).unwrap_err().contains("not a hex digit"));
    }

    #[test]
    fn keygen_makes_new_files_only_in_directories_that_exist() {
        let dir = std::env::temp_dir().join(format!("mw-keygen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mesh.key");
        let p = path.to_str().unwrap();
        assert_eq!(new_file(p), Ok(path.clone()));
        std::fs::write(&path, KEY).unwrap();
        assert!(new_file(p).unwrap_err().contains("already exists"));
        let missing = dir.join("no/such/dir/mesh.key");
        assert!(new_file(missing.to_str().unwrap()).unwrap_err().contains("no/such/dir"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
