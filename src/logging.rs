//! errand's log: lines to stderr (JSON or text), each passing the process's redactor on the way
//! out, so a secret in an error chain (a URL with a password, a token in git's stderr) is not
//! written to the log either.

use std::io::Write as _;
use std::sync::{Arc, RwLock};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::secrets::Redactor;

/// Where redacted lines go: stderr, or a test's buffer.
type Sink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// The redactor log lines pass. It starts with token shapes only and learns the process's
/// secrets once they are read ([`LogRedaction::set`]).
#[derive(Clone)]
pub struct LogRedaction {
    redactor: Arc<RwLock<Redactor>>,
    sink: Sink,
}

impl Default for LogRedaction {
    fn default() -> Self {
        let stderr: Sink = Arc::new(|bytes: &[u8]| {
            let _ = std::io::stderr().lock().write_all(bytes);
        });
        Self { redactor: Arc::default(), sink: stderr }
    }
}

impl LogRedaction {
    /// From now on, lines pass `redactor`.
    pub fn set(&self, redactor: &Redactor) {
        *self.redactor.write().unwrap_or_else(|e| e.into_inner()) = redactor.clone();
    }

    pub fn redact(&self, text: &str) -> String {
        self.redactor.read().unwrap_or_else(|e| e.into_inner()).redact(text)
    }
}

/// Installs the log: `ERRAND_LOG` filters it (default `info`), colours only on a terminal.
pub fn init() -> LogRedaction {
    let redaction = LogRedaction::default();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("ERRAND_LOG").unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(redaction.clone())
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    redaction
}

impl<'a> MakeWriter<'a> for LogRedaction {
    type Writer = RedactedLine;

    fn make_writer(&'a self) -> Self::Writer {
        let redactor = self.redactor.read().unwrap_or_else(|e| e.into_inner()).clone();
        RedactedLine { redactor, line: Vec::new(), sink: self.sink.clone() }
    }
}

/// One log event, collected whole and written redacted when dropped: the formatter writes an
/// event in one or more pieces and then drops its writer.
pub struct RedactedLine {
    redactor: Redactor,
    line: Vec<u8>,
    sink: Sink,
}

impl std::io::Write for RedactedLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine {
    fn drop(&mut self) {
        if self.line.is_empty() {
            return;
        }
        let text = self.redactor.redact(&String::from_utf8_lossy(&self.line));
        (self.sink)(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn a_line_is_written_whole_and_redacted_by_the_secrets_set_later() {
        let written = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = written.clone();
        let sink: Sink = Arc::new(move |bytes: &[u8]| sink.lock().expect("the buffer").extend_from_slice(bytes));
        let redaction = LogRedaction { sink, ..LogRedaction::default() };
        redaction.set(&Redactor::new(["the-redis-password-1".to_owned()]));

        let mut line = redaction.make_writer();
        // The formatter may write one event in pieces: a secret split between them is still found.
        line.write_all(b"connecting to redis://:the-redis-").expect("written");
        line.write_all(b"password-1@redis failed\n").expect("written");
        assert!(written.lock().expect("the buffer").is_empty(), "nothing is written before the event is whole");
        drop(line);

        let text = String::from_utf8(written.lock().expect("the buffer").clone()).expect("UTF-8");
        assert_eq!(text, "connecting to redis://:[redacted]@redis failed\n");
    }
}
