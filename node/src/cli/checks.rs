//! Checks clap runs on argument values while it parses them, so a path
//! that cannot be read or written, or a number that makes no sense, is a
//! usage error (exit code 2) before anything starts: not a failure after
//! joining the mesh and doing all the work.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A number of seconds greater than zero (a deadline, a timeout).
pub(crate) fn positive_secs(s: &str) -> Result<f64, String> {
    let secs = secs(s)?;
    if secs == 0.0 {
        return Err("must be more than 0 seconds".to_string());
    }
    Ok(secs)
}

/// A number of seconds, zero or more (how long to wait).
pub(crate) fn secs(s: &str) -> Result<f64, String> {
    let secs: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    // Also refuses NaN, infinities and more seconds than a Duration holds.
    Duration::try_from_secs_f64(secs).map_err(|_| "must be a number of seconds, 0 or more".to_string())?;
    Ok(secs)
}

/// A file that exists and is not a directory (an input the command reads).
pub(crate) fn readable_file(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    let meta = std::fs::metadata(&path).map_err(|e| format!("cannot read {s}: {e}"))?;
    if meta.is_dir() {
        return Err(format!("{s} is a directory, not a file"));
    }
    std::fs::File::open(&path).map_err(|e| format!("cannot read {s}: {e}"))?;
    Ok(path)
}

/// A file the command can create or overwrite (an output): not a
/// directory, in a directory that exists and may be written.
pub(crate) fn writable_file(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => return Err(format!("{s} is a directory, not a file")),
        Ok(_) => return writable(&path).map(|()| path),
        Err(_) => {}
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => writable(dir).map(|()| path),
        Ok(_) => Err(format!("{} is not a directory", dir.display())),
        Err(e) => Err(format!("directory {}: {e}", dir.display())),
    }
}

/// Whether this process may write `path`, as access(2) says (the answer
/// the kernel would give an open or a create in it).
fn writable(path: &Path) -> Result<(), String> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| format!("{} holds a NUL byte", path.display()))?;
    // SAFETY: access(2) only reads the NUL-terminated path it is given.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        return Err(format!("cannot write {}: {}", path.display(), std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_must_be_numbers_in_range() {
        assert_eq!(secs("0"), Ok(0.0));
        assert_eq!(positive_secs("2.5"), Ok(2.5));
        assert!(positive_secs("0").unwrap_err().contains("more than 0"));
        assert!(secs("-1").unwrap_err().contains("0 or more"));
        assert!(secs("NaN").is_err());
        assert!(secs("1e30").is_err(), "more than a Duration holds");
        assert!(secs("soon").unwrap_err().contains("not a number"));
    }

    #[test]
    fn paths_are_checked_for_what_the_command_does_with_them() {
        let dir = std::env::temp_dir();
        let d = dir.to_str().unwrap();
        assert!(readable_file(d).unwrap_err().contains("is a directory"));
        assert!(readable_file("/nonexistent/x.txt").unwrap_err().contains("cannot read /nonexistent/x.txt"));
        assert!(writable_file(d).unwrap_err().contains("is a directory"));
        assert!(writable_file("/nonexistent/dir/x.png").unwrap_err().contains("directory /nonexistent/dir"));
        let out = dir.join(format!("mw-checks-{}.png", std::process::id()));
        assert_eq!(writable_file(out.to_str().unwrap()), Ok(out.clone()));
        std::fs::write(&out, b"x").unwrap();
        assert_eq!(readable_file(out.to_str().unwrap()), Ok(out.clone()));
        assert!(writable_file(&format!("{}/y.png", out.display())).unwrap_err().contains("is not a directory"));
        std::fs::remove_file(&out).unwrap();
        assert_eq!(writable_file("x.png"), Ok(PathBuf::from("x.png")), "relative to the current directory");
    }
}
