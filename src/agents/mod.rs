//! Real agent CLIs as presets: the pinned headless command line of each, and what errand reads
//! back from the event streams of those that write one.
//!
//! A preset's [`Preset::command_line`] is an ordinary agent command for the agent step (the
//! contract in README "The agent contract" is unchanged). When the preset has an
//! [`Preset::event_format`], the step leaves the stream in [`EVENTS_FILE`]; [`read_transcript`]
//! reads it from the host side of errand's directory, and [`parse_events`] turns it into the
//! agent's claims: the commands it ran with their exit codes, and its final message.

mod events;
mod presets;

use std::path::Path;

pub use self::events::{
    AgentCommand, AgentTranscript, EventFormat, MAX_COMMANDS, OUTPUT_LINES, contradiction, parse_events,
};
pub use self::presets::{EVENTS_FILE, Preset, SummarySource};
use crate::sandbox::{Part, Refusal, read_back};

/// How much of an events file is read: its end, since a transcript keeps the last commands and
/// the final message comes last. A verbose agent's stream can be far larger than this.
pub const MAX_EVENTS_BYTES: u64 = 16 * 1024 * 1024;

/// The transcript in [`EVENTS_FILE`], read from `errand_dir` (the host directory mounted at
/// `/errand`); `Ok(None)` when the agent left no file. Reads at most the last
/// [`MAX_EVENTS_BYTES`], invalid UTF-8 replaced, and refuses anything but a regular file (the
/// agent may have left a link to a worker file, or a FIFO, in its place).
pub async fn read_transcript(errand_dir: &Path, format: EventFormat) -> Result<Option<AgentTranscript>, Refusal> {
    let path = errand_dir.join(Path::new(EVENTS_FILE).file_name().unwrap_or_default());
    let Some(bytes) = read_back(&path, MAX_EVENTS_BYTES, Part::Tail).await? else { return Ok(None) };
    let text = String::from_utf8_lossy(&bytes);
    // Cut from a larger file: the first line is a piece of one, so it goes.
    let text: &str = &text;
    let text =
        if bytes.len() as u64 == MAX_EVENTS_BYTES { text.split_once('\n').map_or("", |(_, rest)| rest) } else { text };
    Ok(Some(parse_events(format, text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_events_file_is_no_transcript() {
        let dir = tempfile::tempdir().expect("a temp dir");
        assert_eq!(read_transcript(dir.path(), EventFormat::CodexJson).await, Ok(None));
    }

    #[tokio::test]
    async fn an_events_file_that_links_elsewhere_is_refused_and_not_read() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let secret = dir.path().join("worker-secret");
        std::fs::write(&secret, "{\"type\":\"turn.completed\"}\n").expect("writing");
        std::os::unix::fs::symlink(&secret, dir.path().join("agent-events.jsonl")).expect("a link");
        assert_eq!(read_transcript(dir.path(), EventFormat::CodexJson).await, Err(Refusal::Symlink));
    }

    #[tokio::test]
    async fn a_large_events_file_is_read_from_its_end() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let codex = include_str!("../../tests/data/agents/codex.jsonl");
        // Megabytes of an earlier command's output lines, then the recorded run.
        let noise = format!("{{\"type\":\"item.updated\",\"item\":{{\"text\":\"{}\"}}}}\n", "x".repeat(1000));
        let lines = (MAX_EVENTS_BYTES as usize / noise.len()) + 10;
        std::fs::write(dir.path().join("agent-events.jsonl"), noise.repeat(lines) + codex).expect("writing");

        let transcript =
            read_transcript(dir.path(), EventFormat::CodexJson).await.expect("readable").expect("a transcript");

        assert_eq!(transcript, parse_events(EventFormat::CodexJson, codex));
    }
}
