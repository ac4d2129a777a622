//! The bounded tail of a step's output: the last lines a person reads, however much was printed.

use std::collections::VecDeque;

/// How many lines of output a step reports.
pub const TAIL_LINES: usize = 60;
/// How many bytes of output a step reports at most (the last ones).
pub const TAIL_BYTES: usize = 16 * 1024;

/// Keeps the last [`TAIL_BYTES`] of a byte stream, so memory stays bounded even when an agent
/// prints gigabytes.
#[derive(Debug, Default)]
pub struct OutputTail {
    bytes: VecDeque<u8>,
    /// Whether bytes were dropped from the front.
    truncated: bool,
}

impl OutputTail {
    pub fn push(&mut self, chunk: &[u8]) {
        let chunk = if chunk.len() > TAIL_BYTES {
            self.truncated = true;
            self.bytes.clear();
            &chunk[chunk.len() - TAIL_BYTES..]
        } else {
            chunk
        };
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(TAIL_BYTES);
        if overflow > 0 {
            self.truncated = true;
            self.bytes.drain(..overflow);
        }
        self.bytes.extend(chunk);
    }

    /// The last [`TAIL_LINES`] lines as text (invalid UTF-8 replaced). When the front was cut,
    /// the first, partial line is dropped, so the tail starts at a line boundary.
    pub fn into_text(self) -> String {
        let bytes = Vec::from(self.bytes);
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        if self.truncated
            && let Some(newline) = text.find('\n')
            && newline + 1 < text.len()
        {
            text.drain(..=newline);
        }
        let body = text.strip_suffix('\n').unwrap_or(&text);
        match body.rmatch_indices('\n').nth(TAIL_LINES - 1) {
            Some((cut, _)) => text[cut + 1..].to_owned(),
            None => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_of(chunks: &[&[u8]]) -> String {
        let mut tail = OutputTail::default();
        for chunk in chunks {
            tail.push(chunk);
        }
        tail.into_text()
    }

    #[test]
    fn short_output_comes_back_whole() {
        assert_eq!(tail_of(&[b"one\n", b"two\n"]), "one\ntwo\n");
        assert_eq!(tail_of(&[b"no newline"]), "no newline");
        assert_eq!(tail_of(&[]), "");
    }

    #[test]
    fn only_the_last_sixty_lines_are_kept() {
        let text: String = (1..=100).map(|n| format!("line {n}\n")).collect();
        let tail = tail_of(&[text.as_bytes()]);
        assert_eq!(tail.lines().count(), TAIL_LINES);
        assert!(tail.starts_with("line 41\n"), "{tail}");
        assert!(tail.ends_with("line 100\n"));
    }

    #[test]
    fn the_last_line_counts_without_a_trailing_newline() {
        let text: String = (1..=61).map(|n| format!("line {n}\n")).collect::<String>() + "last";
        let tail = tail_of(&[text.as_bytes()]);
        assert_eq!(tail.lines().count(), TAIL_LINES);
        assert!(tail.starts_with("line 3\n"), "{tail}");
        assert!(tail.ends_with("line 61\nlast"));
    }

    #[test]
    fn huge_output_keeps_a_bounded_tail_that_starts_at_a_line() {
        let mut tail = OutputTail::default();
        let line = [b'x'; 999];
        for _ in 0..10_000 {
            tail.push(&line);
            tail.push(b"\n");
            assert!(tail.bytes.len() <= TAIL_BYTES);
        }
        tail.push(b"done\n");
        let text = tail.into_text();
        assert!(text.len() <= TAIL_BYTES);
        assert!(text.starts_with("xxx"));
        assert!(text.lines().all(|l| l.len() == 999 || l == "done"), "every line is whole");
        assert!(text.ends_with("done\n"));
    }

    #[test]
    fn one_enormous_chunk_is_cut_to_its_end() {
        let mut chunk = vec![b'y'; 3 * TAIL_BYTES];
        chunk.extend_from_slice(b"\nend\n");
        assert_eq!(tail_of(&[b"before\n", &chunk]), "end\n");
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        assert_eq!(tail_of(&[b"caf\xc3", b"\xa9 \xff\n"]), "caf\u{e9} \u{fffd}\n");
    }
}
