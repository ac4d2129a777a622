//! Redaction of secrets from everything errand posts: the secrets errand itself holds, and
//! anything shaped like a well-known token.

use std::sync::LazyLock;

use regex::Regex;

const REDACTED: &str = "[redacted]";

/// Token shapes that are never posted, whoever's they are.
static TOKEN_SHAPES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"gh[pousr]_[A-Za-z0-9]{20,}",
        r"|github_pat_[A-Za-z0-9_]{20,}",
        r"|xox[abposr]-[A-Za-z0-9-]{10,}",
        r"|sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}",
        r"|AKIA[0-9A-Z]{16}",
        r"|(?i:authorization:\s*(?:basic|bearer|token)\s+)[A-Za-z0-9+/=._-]{8,}",
        r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
    ))
    .expect("the token patterns are valid")
});

/// Removes secrets from text before errand posts it.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Values errand knows to be secret (tokens, webhook secrets, API keys it passes on).
    known: Vec<String>,
}

impl Redactor {
    pub fn new(known: impl IntoIterator<Item = String>) -> Self {
        // Short values would redact ordinary words; a secret that short is not worth hiding.
        let mut known: Vec<String> = known.into_iter().filter(|s| s.len() >= 8).collect();
        known.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { known }
    }

    /// Adds a secret learned later (e.g. an installation token minted for a job).
    pub fn with(&self, secret: &str) -> Self {
        let mut known = self.known.clone();
        known.push(secret.to_owned());
        Self::new(known)
    }

    pub fn redact(&self, text: &str) -> String {
        let mut text = TOKEN_SHAPES.replace_all(text, REDACTED).into_owned();
        for secret in &self.known {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_and_token_shapes_are_redacted() {
        let r = Redactor::new(["hunter2-is-my-password".to_owned(), "short".to_owned()]);
        let out = r.redact(
            "pass=hunter2-is-my-password token ghs_0123456789abcdefghijABCDEFGHIJ slack xoxb-1234-5678-abcdefgh short",
        );
        assert_eq!(out, "pass=[redacted] token [redacted] slack [redacted] short");
    }

    #[test]
    fn authorization_headers_and_private_keys_are_redacted() {
        let r = Redactor::default();
        assert_eq!(r.redact("AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hz"), "[redacted]");
        let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----";
        assert_eq!(r.redact(&format!("before {key} after")), "before [redacted] after");
    }

    #[test]
    fn a_secret_learned_later_is_redacted_too() {
        let r = Redactor::default().with("installation-secret-value");
        assert_eq!(r.redact("x installation-secret-value y"), "x [redacted] y");
    }
}
