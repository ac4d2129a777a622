//! errand's log: lines to stderr (JSON or text), each passing the process's redactor on the way
//! out, so a secret in an error chain (a URL with a password, a token in git's stderr) is not
//! written to the log either.

use std::io::Write as _;
use std::sync::{Arc, RwLock};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::secrets::Redactor;

/// The redactor log lines pass. It starts with token shapes only and learns the process's
/// secrets once they are read ([`LogRedaction::set`]).
#[derive(Clone, Default)]
pub struct LogRedaction(Arc<RwLock<Redactor>>);

impl LogRedaction {
    /// From now on, lines pass `redactor`.
    pub fn set(&self, redactor: &Redactor) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = redactor.clone();
    }

    pub fn redact(&self, text: &str) -> String {
        self.0.read().unwrap_or_else(|e| e.into_inner()).redact(text)
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
        RedactedLine { redactor: self.0.read().unwrap_or_else(|e| e.into_inner()).clone(), line: Vec::new() }
    }
}

/// One log event, collected whole and written redacted when dropped: the formatter writes an
/// event in one or more pieces and then drops its writer.
pub struct RedactedLine {
    redactor: Redactor,
    line: Vec<u8>,
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
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_written_redacted_by_the_secrets_set_later() {
        let redaction = LogRedaction::default();
        redaction.set(&Redactor::new(["the-redis-password-1".to_owned()]));
        let mut line = redaction.make_writer();
        let _ = line.write(b"connecting to redis://:the-redis-password-1@redis failed");
        assert_eq!(
            redaction.redact(&String::from_utf8_lossy(&line.line)),
            "connecting to redis://:[redacted]@redis failed"
        );
        assert_eq!(line.redactor.redact("the-redis-password-1"), "[redacted]", "the writer holds the secrets set");
    }
}
