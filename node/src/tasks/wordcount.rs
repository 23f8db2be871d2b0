//! `wordcount`: counts the words of a UTF-8 text file and lists the most
//! frequent ones.
//!
//! The submitter reads the file and cuts its text at whitespace, so every
//! word lies whole in one chunk and the counts add up exactly; each chunk
//! travels in its piece, so workers need no access to the file. A word is a
//! maximal run of alphanumeric characters, lowercased.

use super::{check_pieces, equal_part, Rendered, MAX_PIECE_BYTES};
use meshwork_protocol::task::{CancelFlag, Task, TaskError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Words a piece counts between two looks at its cancellation flag.
const CANCEL_EVERY: usize = 1 << 16;

/// The `wordcount` task.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wordcount;

/// A `wordcount` job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordcountInput {
    /// The text file, read by [`Wordcount::split`].
    pub file: PathBuf,
    /// How many of the most frequent words the result lists.
    pub top: usize,
    /// Chunks the text is cut into (fewer if it has too few words).
    pub pieces: u32,
}

/// The counts of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordcountSummary {
    /// Words in the file, repeats included.
    pub total_words: u64,
    /// Different words in the file.
    pub distinct: u64,
    /// The most frequent words with their counts, by count then alphabetically.
    pub top: Vec<(String, u64)>,
}

/// Count the words of a text file and list the most frequent.
#[derive(clap::Args, Debug, Clone)]
pub struct WordcountArgs {
    /// UTF-8 text file to count the words of.
    #[arg(value_parser = crate::cli::checks::readable_file)]
    pub file: PathBuf,
    /// How many of the most frequent words to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    /// Number of chunks the text is cut into.
    #[arg(long, default_value_t = 16)]
    pub pieces: u32,
}

impl WordcountArgs {
    /// The job these arguments ask for, or why they are not acceptable. The
    /// file itself is read, and checked, by [`Wordcount::split`].
    pub fn input(&self) -> anyhow::Result<WordcountInput> {
        check_pieces(self.pieces).map_err(anyhow::Error::msg)?;
        Ok(WordcountInput { file: self.file.clone(), top: self.top, pieces: self.pieces })
    }
}

/// The result as `meshwork run wordcount` prints it.
pub fn render(input: &WordcountInput, summary: &WordcountSummary) -> anyhow::Result<Rendered> {
    let top: Vec<String> = summary.top.iter().map(|(word, count)| format!("{word} ({count})")).collect();
    let top_json: Vec<_> =
        summary.top.iter().map(|(word, count)| serde_json::json!({ "word": word, "count": count })).collect();
    Ok(Rendered {
        text: format!(
            "{}: {} words, {} distinct; top: {}",
            input.file.display(),
            summary.total_words,
            summary.distinct,
            top.join(", ")
        ),
        json: serde_json::json!({
            "task": Wordcount::NAME,
            "file": input.file.display().to_string(),
            "total_words": summary.total_words,
            "distinct": summary.distinct,
            "top": top_json,
        }),
        file: None,
    })
}

impl Task for Wordcount {
    const NAME: &'static str = "wordcount";
    type Input = WordcountInput;
    type Piece = String;
    type Output = Vec<(String, u64)>;
    type Result = WordcountSummary;

    fn split(&self, input: &WordcountInput) -> Result<Vec<String>, TaskError> {
        check_pieces(input.pieces).map_err(TaskError::Invalid)?;
        let text = read_text(&input.file)?;
        let chunks = chunks(&text, input.pieces as usize);
        if let Some(big) = chunks.iter().find(|chunk| chunk.len() > MAX_PIECE_BYTES) {
            return Err(TaskError::Invalid(format!(
                "{} has a chunk of {} bytes, more than the {MAX_PIECE_BYTES} a piece carries: use more --pieces",
                input.file.display(),
                big.len()
            )));
        }
        Ok(chunks.into_iter().map(str::to_string).collect())
    }

    /// The chunk's words and their counts, sorted by word.
    fn run(&self, chunk: String, cancel: &CancelFlag) -> Result<Vec<(String, u64)>, TaskError> {
        let mut counts = BTreeMap::<String, u64>::new();
        for (i, word) in words(&chunk).enumerate() {
            if i % CANCEL_EVERY == 0 {
                cancel.check()?;
            }
            *counts.entry(word).or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    }

    /// Adds the chunks' counts up. The counts came from peers, so a sum past
    /// 2^64 fails the job rather than the submitter.
    fn merge(&self, input: &WordcountInput, outputs: Vec<Vec<(String, u64)>>) -> Result<WordcountSummary, TaskError> {
        let overflow = || TaskError::Failed("word counts add up to more than 2^64".to_string());
        let mut counts = BTreeMap::<String, u64>::new();
        let mut total_words = 0u64;
        for (word, count) in outputs.into_iter().flatten() {
            total_words = total_words.checked_add(count).ok_or_else(overflow)?;
            let entry = counts.entry(word).or_default();
            *entry = entry.checked_add(count).ok_or_else(overflow)?;
        }
        let distinct = counts.len() as u64;
        let mut top: Vec<(String, u64)> = counts.into_iter().collect();
        top.sort_by(|(a, m), (b, n)| n.cmp(m).then_with(|| a.cmp(b)));
        top.truncate(input.top);
        Ok(WordcountSummary { total_words, distinct, top })
    }
}

/// The file's text, or an error naming the file.
fn read_text(file: &Path) -> Result<String, TaskError> {
    let bytes = std::fs::read(file).map_err(|e| TaskError::Invalid(format!("cannot read {}: {e}", file.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        TaskError::Invalid(format!("{} is not UTF-8 text (invalid byte at offset {at})", file.display()))
    })
}

/// Cuts `text` into at most `n` non-empty chunks of about equal size, each
/// cut just before a whitespace character so no word is split. Always at
/// least one chunk, empty for an empty text, so even that job has a piece.
fn chunks(text: &str, n: usize) -> Vec<&str> {
    let n = n.min(text.len()).max(1);
    let mut chunks = Vec::with_capacity(n);
    let mut start = 0;
    for i in 1..n as u64 {
        let target = equal_part(0, text.len() as u64, i, n as u64).0 as usize;
        let cut = next_whitespace(text, target.max(start));
        if cut > start {
            chunks.push(&text[start..cut]);
            start = cut;
        }
    }
    if start < text.len() || chunks.is_empty() {
        chunks.push(&text[start..]);
    }
    chunks
}

/// The byte offset of the first whitespace character at or after `from`, or
/// the end of `text`.
fn next_whitespace(text: &str, mut from: usize) -> usize {
    while !text.is_char_boundary(from) {
        from += 1;
    }
    text[from..].find(char::is_whitespace).map_or(text.len(), |i| from + i)
}

/// The words of `text`, lowercased.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()).map(str::to_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::run_locally;

    const TEXT: &str = "The cat sat on the mat.\nThe END; the end!\nCafé café CAFÉ 42 4-2 don't\n";

    /// A file in the temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, contents: &[u8]) -> TempFile {
            let path = std::env::temp_dir().join(format!("meshwork-wordcount-{}-{name}", std::process::id()));
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn count(file: &TempFile, top: usize, pieces: u32) -> Result<WordcountSummary, TaskError> {
        run_locally(&Wordcount, &WordcountInput { file: file.0.clone(), top, pieces })
    }

    fn owned(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
        pairs.iter().map(|&(word, count)| (word.to_string(), count)).collect()
    }

    #[test]
    fn counts_known_words() {
        let file = TempFile::new("known.txt", TEXT.as_bytes());
        let summary = count(&file, 5, 4).unwrap();
        assert_eq!(summary.total_words, 18);
        assert_eq!(summary.distinct, 12);
        assert_eq!(summary.top, owned(&[("the", 4), ("café", 3), ("end", 2), ("2", 1), ("4", 1)]));
    }

    #[test]
    fn piece_count_does_not_change_the_result() {
        let file = TempFile::new("pieces.txt", TEXT.repeat(50).as_bytes());
        assert_eq!(count(&file, 20, 1).unwrap(), count(&file, 20, 5).unwrap());
        assert_eq!(count(&file, 20, 5).unwrap().total_words, 18 * 50);
    }

    #[test]
    fn chunks_cut_only_before_whitespace() {
        let text = "héllo wörld  naïve\tcafé\nzürich ünïcödé words everywhere";
        for n in 1..=text.len() + 2 {
            let chunks = chunks(text, n);
            assert!(chunks.len() <= n);
            assert_eq!(chunks.concat(), text, "{n} chunks");
            assert!(chunks.iter().all(|chunk| !chunk.is_empty()));
            assert!(chunks[1..].iter().all(|chunk| chunk.starts_with(char::is_whitespace)), "{chunks:?}");
            let words_in_chunks: Vec<String> = chunks.iter().flat_map(|chunk| words(chunk)).collect();
            assert_eq!(words_in_chunks, words(text).collect::<Vec<_>>());
        }
    }

    #[test]
    fn an_empty_file_has_one_empty_piece() {
        let file = TempFile::new("empty.txt", b"");
        assert_eq!(Wordcount.split(&WordcountInput { file: file.0.clone(), top: 1, pieces: 8 }).unwrap(), vec![""]);
        assert_eq!(count(&file, 3, 8).unwrap(), WordcountSummary { total_words: 0, distinct: 0, top: vec![] });
    }

    #[test]
    fn unreadable_and_non_utf8_files_are_named() {
        let missing = std::env::temp_dir().join("meshwork-wordcount-no-such-file.txt");
        let err = Wordcount.split(&WordcountInput { file: missing.clone(), top: 1, pieces: 1 }).unwrap_err();
        assert!(err.to_string().contains(&format!("cannot read {}", missing.display())), "{err}");
        let binary = TempFile::new("binary.bin", b"ok \xff\xfe");
        let err = count(&binary, 1, 1).unwrap_err();
        assert_eq!(
            err,
            TaskError::Invalid(format!("{} is not UTF-8 text (invalid byte at offset 3)", binary.0.display()))
        );
    }

    #[test]
    fn merge_orders_by_count_then_word() {
        let input = WordcountInput { file: PathBuf::new(), top: 3, pieces: 2 };
        let outputs = vec![owned(&[("b", 2), ("c", 1)]), owned(&[("a", 2), ("c", 2)])];
        let summary = Wordcount.merge(&input, outputs).unwrap();
        assert_eq!(
            summary,
            WordcountSummary { total_words: 7, distinct: 3, top: owned(&[("c", 3), ("a", 2), ("b", 2)]) }
        );
        let overflowing = vec![owned(&[("a", u64::MAX)]), owned(&[("a", 1)])];
        assert!(matches!(Wordcount.merge(&input, overflowing), Err(TaskError::Failed(_))));
    }

    #[test]
    fn a_cancelled_piece_stops() {
        let cancel = CancelFlag::new();
        cancel.cancel();
        assert_eq!(Wordcount.run("some words".to_string(), &cancel), Err(TaskError::Cancelled));
    }

    #[test]
    fn arguments_are_checked() {
        let args = WordcountArgs { file: "x.txt".into(), top: 10, pieces: 0 };
        assert_eq!(args.input().unwrap_err().to_string(), "--pieces must be between 1 and 1000000");
    }

    #[test]
    fn render_lists_the_top_words() {
        let input = WordcountInput { file: "t.txt".into(), top: 2, pieces: 1 };
        let summary = WordcountSummary { total_words: 5, distinct: 2, top: owned(&[("a", 3), ("b", 2)]) };
        let rendered = render(&input, &summary).unwrap();
        assert_eq!(rendered.text, "t.txt: 5 words, 2 distinct; top: a (3), b (2)");
        assert_eq!(rendered.json["top"][0], serde_json::json!({ "word": "a", "count": 3 }));
    }
}
