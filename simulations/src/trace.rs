//! The trace: one JSON object per notable event, with its virtual time in
//! microseconds (`"t_us"`). Every line is hashed (FNV-1a 64 over the bytes
//! of the file, newlines included) whether or not `--trace` writes it, so
//! two runs compare by one number.
//!
//! Kinds (`"ev"`): `submitted`, `placed` and `backup` (a batch: job, peer,
//! pieces, the load placement saw), `done` (results came back: pieces done
//! so far), `retried`, `refused`, `unplaceable`, `finished`; `crash`,
//! `leave`, `left`, `join`, `hang`, `resume`, `partition`, `heal`; `down`
//! (a machine judged a peer dead and disconnected it), and `peer_up` /
//! `peer_down` as submitters see the mesh change.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 of `bytes`, continuing from `hash`.
pub(crate) fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= *b as u64;
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Trace lines: hashed always, written when a file was given.
#[derive(Debug)]
pub(crate) struct Trace {
    hash: u64,
    lines: u64,
    line: String,
    out: Option<(PathBuf, BufWriter<File>)>,
    error: Option<(PathBuf, std::io::Error)>,
}

/// One line being written: `{"t_us":..,"ev":".."` then fields, then `}`.
pub(crate) struct Line<'a>(&'a mut String);

impl Line<'_> {
    /// Adds a number field.
    pub(crate) fn num(self, key: &str, v: impl std::fmt::Display) -> Self {
        let _ = write!(self.0, ",\"{key}\":{v}");
        self
    }

    /// Adds a string field.
    pub(crate) fn str(self, key: &str, v: &str) -> Self {
        let _ = write!(self.0, ",\"{key}\":");
        escape(self.0, v);
        self
    }

    /// Adds a list of numbers.
    pub(crate) fn list(self, key: &str, v: &[u32]) -> Self {
        let _ = write!(self.0, ",\"{key}\":[");
        for (i, x) in v.iter().enumerate() {
            let _ = if i == 0 { write!(self.0, "{x}") } else { write!(self.0, ",{x}") };
        }
        self.0.push(']');
        self
    }
}

impl Trace {
    /// A trace written to `path` if given.
    pub(crate) fn new(path: Option<&Path>) -> std::io::Result<Trace> {
        let out = match path {
            Some(p) => Some((p.to_path_buf(), BufWriter::new(File::create(p)?))),
            None => None,
        };
        Ok(Trace { hash: FNV_OFFSET, lines: 0, line: String::with_capacity(256), out, error: None })
    }

    /// Writes one event at `t_us` of kind `ev`; `fields` adds the rest.
    pub(crate) fn event(&mut self, t_us: u64, ev: &str, fields: impl FnOnce(Line) -> Line) {
        self.line.clear();
        let _ = write!(self.line, "{{\"t_us\":{t_us},\"ev\":\"{ev}\"");
        fields(Line(&mut self.line));
        self.line.push_str("}\n");
        self.hash = fnv1a(self.hash, self.line.as_bytes());
        self.lines += 1;
        if let Some((path, w)) = &mut self.out {
            if let Err(e) = w.write_all(self.line.as_bytes()) {
                self.error.get_or_insert((path.clone(), e));
            }
        }
    }

    /// The hash of every line so far.
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// Lines so far.
    pub(crate) fn lines(&self) -> u64 {
        self.lines
    }

    /// Flushes the file; the first write error, if any.
    pub(crate) fn finish(&mut self) -> Result<(), (PathBuf, std::io::Error)> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        match &mut self.out {
            Some((path, w)) => w.flush().map_err(|e| (path.clone(), e)),
            None => Ok(()),
        }
    }
}

/// Appends `s` as a JSON string.
fn escape(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_and_hashed() {
        let mut t = Trace::new(None).unwrap();
        let before = t.hash();
        t.event(12, "retried", |l| l.num("piece", 3).str("cause", "peer \"down\"\n").list("pieces", &[1, 2]));
        let v: serde_json::Value = serde_json::from_str(t.line.trim_end()).unwrap();
        assert_eq!(v["cause"], "peer \"down\"\n");
        assert_eq!(v["pieces"][1], 2);
        assert_ne!(t.hash(), before);
        assert_eq!(t.hash(), fnv1a(FNV_OFFSET, t.line.as_bytes()));
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c, "FNV-1a 64 test vector");
    }
}
