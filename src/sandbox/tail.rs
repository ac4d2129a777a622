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

    /// The last [`TAIL_LINES`] lines as text (invalid UTF-8 replaced), at most [`TAIL_BYTES`]
    /// long. When the front was cut mid-line, the text starts with `…`: the end of a very long
    /// line is usually where its error is, so the partial line is kept rather than dropped.
    pub fn into_text(self) -> String {
        let mut bytes = Vec::from(self.bytes);
        if self.truncated {
            // The cut may have split a character; drop its orphaned continuation bytes.
            let orphans = bytes.iter().take(3).take_while(|&&b| b & 0b1100_0000 == 0b1000_0000).count();
            bytes.drain(..orphans);
        }
        let text = String::from_utf8_lossy(&bytes);
        let body = text.strip_suffix('\n').unwrap_or(&text);
        let tail = match body.rmatch_indices('\n').nth(TAIL_LINES - 1) {
            // More lines than reported: the first one kept is whole.
            Some((newline, _)) => text[newline + 1..].to_owned(),
            None if self.truncated => format!("{CUT_MARKER}{text}"),
            None => text.into_owned(),
        };
        clamp_front(tail)
    }
}

/// Marks a tail whose first line lost its beginning.
const CUT_MARKER: &str = "\u{2026}";

/// Cuts `text` to its last [`TAIL_BYTES`] (the marker included): the marker and replaced
/// invalid bytes can make the text longer than the bytes it came from.
fn clamp_front(text: String) -> String {
    if text.len() <= TAIL_BYTES {
        return text;
    }
    let mut start = text.len() - TAIL_BYTES + CUT_MARKER.len();
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("{CUT_MARKER}{}", &text[start..])
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
    fn huge_output_keeps_a_bounded_tail_marked_where_it_was_cut() {
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
        let mut lines = text.lines();
        assert!(lines.next().is_some_and(|first| first.starts_with("\u{2026}x") && first.len() < 999 + 3));
        assert!(lines.all(|l| l.len() == 999 || l == "done"), "all lines but the first are whole");
        assert!(text.ends_with("done\n"));
    }

    #[test]
    fn one_enormous_chunk_is_cut_to_its_end() {
        let mut chunk = vec![b'y'; 3 * TAIL_BYTES];
        chunk.extend_from_slice(b"\nend\n");
        let text = tail_of(&[b"before\n", &chunk]);
        assert!(text.len() <= TAIL_BYTES);
        assert!(text.starts_with("\u{2026}yyy") && text.ends_with("yyy\nend\n"), "{text}");
    }

    #[test]
    fn a_cut_through_a_character_leaves_no_replacement_character() {
        let mut chunk = "\u{e9}".repeat(TAIL_BYTES);
        chunk.push('\n');
        let text = tail_of(&[chunk.as_bytes()]);
        assert!(text.len() <= TAIL_BYTES);
        assert!(text.starts_with("\u{2026}\u{e9}") && !text.contains('\u{fffd}'), "{text}");
    }

    #[test]
    fn binary_output_stays_within_the_byte_bound() {
        let text = tail_of(&[&[0xff; 3 * TAIL_BYTES]]);
        assert!(text.len() <= TAIL_BYTES, "{} bytes", text.len());
        assert!(text.starts_with('\u{2026}'));
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        assert_eq!(tail_of(&[b"caf\xc3", b"\xa9 \xff\n"]), "caf\u{e9} \u{fffd}\n");
    }
}
