//! `--joblog FILE`: one line per command in GNU parallel's format, so the
//! tools that read parallel's joblogs read meshwork's.

use super::task::ExecOutput;
use std::io::Write;

/// The header line.
pub const HEADER: &str = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n";

/// The line of command `seq` (`argv`), run on `host`.
pub fn line(seq: u64, host: &str, argv: &[String], out: &ExecOutput) -> String {
    let received = out.stdout.len() as u64 + out.stderr.len() as u64 + out.stdout_dropped + out.stderr_dropped;
    format!(
        "{seq}\t{host}\t{}.{:03}\t{:>10.3}\t0\t{received}\t{}\t{}\t{}\n",
        out.start_ms / 1000,
        out.start_ms % 1000,
        out.runtime_ms as f64 / 1000.0,
        out.exit.max(0),
        out.signal,
        command_line(argv),
    )
}

/// `argv` as a shell would read it back (words with spaces or quotes quoted).
pub fn command_line(argv: &[String]) -> String {
    let word = |w: &String| {
        let plain = !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "_./+,:@%=-{}#".contains(c));
        if plain {
            w.clone()
        } else {
            format!("'{}'", w.replace('\'', r"'\''"))
        }
    };
    argv.iter().map(word).collect::<Vec<_>>().join(" ")
}

/// Writes the header and then lines as commands end.
pub struct Joblog {
    file: std::io::BufWriter<std::fs::File>,
}

impl Joblog {
    /// Creates (or truncates) `path` and writes the header.
    pub fn create(path: &std::path::Path) -> std::io::Result<Joblog> {
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        file.write_all(HEADER.as_bytes())?;
        file.flush()?;
        Ok(Joblog { file })
    }

    /// Appends one line, flushed (a joblog is read while a run goes on).
    pub fn write(&mut self, line: &str) -> std::io::Result<()> {
        self.file.write_all(line.as_bytes())?;
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_bytes::ByteBuf;

    #[test]
    fn a_line_has_parallels_nine_columns() {
        let out = ExecOutput {
            host: "h".into(),
            start_ms: 1_795_969_857_717,
            runtime_ms: 6,
            exit: 3,
            signal: 0,
            timed_out: false,
            stdout: ByteBuf::from(b"a\n".to_vec()),
            stderr: ByteBuf::from(b"e".to_vec()),
            stdout_dropped: 10,
            stderr_dropped: 0,
        };
        let argv: Vec<String> = ["echo", "a b", "it's"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            line(1, "h:peer", &argv, &out),
            "1\th:peer\t1795969857.717\t     0.006\t0\t13\t3\t0\techo 'a b' 'it'\\''s'\n"
        );
    }
}
