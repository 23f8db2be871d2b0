//! GNU parallel's replacement strings, so a `parallel` command line works
//! unchanged after `meshwork run exec`.
//!
//! `{}` the input, `{#}` its 1-based sequence number, `{.}` the input
//! without its extension, `{/}` its basename, `{//}` its directory, `{/.}`
//! the basename without extension. A command with none of them gets the
//! input as its last argument, as in parallel.
//!
//! There is no shell between meshwork and the command: each word of the
//! command is one argv entry, with the input substituted as it is. The one
//! exception is the script of `sh -c SCRIPT` (or bash, dash, zsh, ksh):
//! there the input is substituted shell-quoted, so a file named
//! `a b;rm -rf ~` stays one word of the script instead of becoming two
//! commands.

/// The replacement strings, longest first (so `{/.}` is not read as `{/}`).
const TOKENS: [&str; 6] = ["{//}", "{/.}", "{#}", "{.}", "{/}", "{}"];

/// Shells whose `-c` script gets quoted substitutions.
const SHELLS: [&str; 5] = ["sh", "bash", "dash", "zsh", "ksh"];

/// The argv of input `input` (sequence number `seq`) for `command`.
pub fn expand(command: &[String], input: &str, seq: u64) -> Vec<String> {
    let script_at = script_index(command);
    let mut any = false;
    let mut argv: Vec<String> = command
        .iter()
        .enumerate()
        .map(|(i, word)| {
            let (expanded, found) = substitute(word, input, seq, Some(i) == script_at);
            any |= found;
            expanded
        })
        .collect();
    if !any {
        argv.push(input.to_string());
    }
    argv
}

/// Does `command` name any replacement string?
pub fn has_placeholder(command: &[String]) -> bool {
    command.iter().any(|w| TOKENS.iter().any(|t| w.contains(t)))
}

/// Where the script of `sh -c SCRIPT` is, if `command` is one.
fn script_index(command: &[String]) -> Option<usize> {
    let program = command.first()?;
    let name = program.rsplit('/').next().unwrap_or(program);
    if !SHELLS.contains(&name) {
        return None;
    }
    command.iter().position(|w| w == "-c").map(|i| i + 1).filter(|&i| i < command.len())
}

/// `word` with every replacement string replaced; whether there was one.
fn substitute(word: &str, input: &str, seq: u64, quoted: bool) -> (String, bool) {
    let mut out = String::with_capacity(word.len() + input.len());
    let mut rest = word;
    let mut found = false;
    'scan: while !rest.is_empty() {
        for token in TOKENS {
            if let Some(after) = rest.strip_prefix(token) {
                let value = value_of(token, input, seq);
                if quoted {
                    out.push_str(&shell_quote(&value));
                } else {
                    out.push_str(&value);
                }
                rest = after;
                found = true;
                continue 'scan;
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    (out, found)
}

fn value_of(token: &str, input: &str, seq: u64) -> String {
    match token {
        "{}" => input.to_string(),
        "{#}" => seq.to_string(),
        "{.}" => without_extension(input).to_string(),
        "{/}" => basename(input).to_string(),
        "{//}" => dirname(input).to_string(),
        "{/.}" => without_extension(basename(input)).to_string(),
        _ => unreachable!("TOKENS lists only these"),
    }
}

/// What follows the last `/` (all of it when there is none).
fn basename(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, base)| base)
}

/// What precedes the last `/`; `.` when there is none, as in parallel.
fn dirname(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
        None => ".",
    }
}

/// Without its last extension: parallel's `s:\.[^/.]+$::` (so a dot in a
/// directory name is kept, and `.hidden` becomes empty, as there).
fn without_extension(path: &str) -> &str {
    match path.rfind('.') {
        Some(dot) if dot + 1 < path.len() && !path[dot + 1..].contains('/') => &path[..dot],
        _ => path,
    }
}

/// `value` as one word of a POSIX shell script.
fn shell_quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./+,:@%=-".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        return value.to_string();
    }
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn each_replacement_string_gives_its_part_of_the_input() {
        let cmd = words("x {} {#} {.} {/} {//} {/.}");
        assert_eq!(
            expand(&cmd, "dir.d/sub/file.tar.gz", 7),
            words("x dir.d/sub/file.tar.gz 7 dir.d/sub/file.tar file.tar.gz dir.d/sub file.tar")
        );
        assert_eq!(expand(&cmd, "a.flac", 1), words("x a.flac 1 a a.flac . a"));
        assert_eq!(expand(&cmd, "dir.d/noext", 2), words("x dir.d/noext 2 dir.d/noext noext dir.d noext"));
        assert_eq!(expand(&cmd, "/top", 3), words("x /top 3 /top top / top"));
        assert_eq!(expand(&cmd, ".hidden", 4), vec!["x", ".hidden", "4", "", ".hidden", ".", ""]);
    }

    #[test]
    fn replacement_strings_work_inside_words() {
        let cmd = vec!["flac".into(), "-o".into(), "/shared/{.}.wav".into(), "/shared/{}".into()];
        assert_eq!(expand(&cmd, "b.flac", 2), vec!["flac", "-o", "/shared/b.wav", "/shared/b.flac"]);
    }

    #[test]
    fn a_command_without_replacement_strings_gets_the_input_last() {
        assert_eq!(expand(&words("gzip -9"), "a b.txt", 1), vec!["gzip", "-9", "a b.txt"]);
        assert!(!has_placeholder(&words("gzip -9")));
        assert!(has_placeholder(&words("echo {#}")));
    }

    #[test]
    fn the_script_of_sh_c_gets_the_input_quoted_and_other_words_do_not() {
        let cmd = vec!["sh".into(), "-c".into(), "wc -c {} # {/}".into(), "{}".into()];
        let argv = expand(&cmd, "it's a;b", 1);
        assert_eq!(argv, vec!["sh", "-c", r"wc -c 'it'\''s a;b' # 'it'\''s a;b'", "it's a;b"]);
        let plain = expand(&cmd, "photo_1.jpg", 1);
        assert_eq!(plain[2], "wc -c photo_1.jpg # photo_1.jpg");
        // Not a shell: nothing is quoted.
        assert_eq!(expand(&words("echo -c {}"), "a;b", 1), words("echo -c a;b"));
    }
}
