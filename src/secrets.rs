//! The secrets errand holds, and the one redactor everything that leaves errand goes through:
//! comments, pull requests, commit messages, Slack messages, the job API and the logs.
//!
//! It knows two kinds of secret: the values this process holds (webhook and signing secrets,
//! the API token, bot tokens, the App key, the Redis password, every value given to agents),
//! and the shapes of well-known tokens, whoever's they are. Text is redacted; a change that
//! would be pushed is instead searched for the known values ([`Redactor::find_known`]), because
//! a secret committed to a repository cannot be taken back.

use std::sync::{Arc, LazyLock};

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;

const REDACTED: &str = "[redacted]";

/// Values shorter than this are not treated as secrets: they would redact ordinary words, and a
/// secret that short is not worth hiding.
const MIN_SECRET_LEN: usize = 8;

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

/// Removes secrets from text before errand lets it out, and finds them in changes before a push.
/// Cheap to clone: the values and their automaton are shared.
#[derive(Clone, Default)]
pub struct Redactor {
    known: Arc<Known>,
}

#[derive(Default)]
struct Known {
    values: Vec<String>,
    /// Finds any of `values` in one pass; `None` when there are none.
    finder: Option<AhoCorasick>,
}

impl std::fmt::Debug for Redactor {
    // The values are the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor").field("known", &self.known.values.len()).finish()
    }
}

impl Redactor {
    pub fn new(known: impl IntoIterator<Item = String>) -> Self {
        let mut values: Vec<String> = Vec::new();
        for secret in known {
            values.extend(pieces_of(&secret));
        }
        values.sort();
        values.dedup();
        // Leftmost-longest: a secret that contains another is replaced whole.
        let finder = (!values.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&values)
                .expect("literal patterns build")
        });
        Self { known: Arc::new(Known { values, finder }) }
    }

    /// This redactor and one more secret (an installation token minted for a job, say).
    pub fn with(&self, secret: &str) -> Self {
        Self::new(self.known.values.iter().cloned().chain(std::iter::once(secret.to_owned())))
    }

    /// This redactor and more secrets.
    pub fn with_all(&self, secrets: impl IntoIterator<Item = String>) -> Self {
        Self::new(self.known.values.iter().cloned().chain(secrets))
    }

    pub fn redact(&self, text: &str) -> String {
        let mut text = TOKEN_SHAPES.replace_all(text, REDACTED).into_owned();
        if let Some(finder) = &self.known.finder
            && finder.is_match(&text)
        {
            let replacements = vec![REDACTED; self.known.values.len()];
            text = finder.replace_all(&text, &replacements);
        }
        text
    }

    /// Whether `bytes` hold any secret this process knows (not mere token shapes: a test fixture
    /// may well look like a token).
    pub fn find_known(&self, bytes: &[u8]) -> bool {
        self.known.finder.as_ref().is_some_and(|finder| finder.is_match(bytes))
    }

    /// How many values this redactor knows (for the log line at start).
    pub fn known_count(&self) -> usize {
        self.known.values.len()
    }
}

/// What of `secret` is searched for: the value itself, and for a multi-line secret (a PEM key)
/// each of its long lines too, so that a key copied in part, or wrapped differently, is found.
fn pieces_of(secret: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let whole = secret.trim();
    if whole.len() >= MIN_SECRET_LEN {
        pieces.push(whole.to_owned());
    }
    if whole.contains('\n') {
        pieces.extend(
            whole
                .lines()
                .map(str::trim)
                .filter(|line| line.len() >= 20 && !line.starts_with("-----"))
                .map(str::to_owned),
        );
    }
    pieces
}

/// The password of a Redis URL (`redis://:pw@host`, `redis://user:pw@host`), which errand holds
/// and so must never post.
pub fn redis_url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split(['/', '?', '#']).next()?.rsplit_once('@')?.0;
    let password = userinfo.split_once(':').map_or(userinfo, |(_, password)| password);
    let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy().into_owned();
    (!decoded.is_empty()).then_some(decoded)
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

    #[test]
    fn a_secret_that_contains_another_is_replaced_whole() {
        let r = Redactor::new(["abcdefgh".to_owned(), "abcdefgh-and-more".to_owned()]);
        assert_eq!(r.redact("1 abcdefgh-and-more 2 abcdefgh"), "1 [redacted] 2 [redacted]");
    }

    #[test]
    fn a_key_is_found_by_any_of_its_lines_and_its_begin_line_is_not_a_title() {
        let body = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun";
        let key = format!("-----BEGIN RSA PRIVATE KEY-----\n{body}\nVbMV2BQIDAQAB\n-----END RSA PRIVATE KEY-----\n");
        let r = Redactor::new([key]);
        // A file that copies one line of the key, without its armour.
        assert!(r.find_known(format!("const K: &str = \"{body}\";").as_bytes()));
        assert_eq!(r.redact(&format!("title {body}")), "title [redacted]");
        assert!(!r.find_known(b"-----BEGIN RSA PRIVATE KEY-----"), "the armour alone is no secret");
    }

    #[test]
    fn find_known_ignores_token_shapes_and_finds_known_values_in_bytes() {
        let r = Redactor::new(["sk-the-real-model-key-0001".to_owned()]);
        assert!(!r.find_known(b"fixture: ghp_0123456789abcdefghijABCDEFGHIJ"));
        assert!(r.find_known(b"\x00\x01binary sk-the-real-model-key-0001\xff"));
        assert!(!Redactor::default().find_known(b"anything"));
    }

    #[test]
    fn the_password_of_a_redis_url_is_found() {
        assert_eq!(redis_url_password("redis://:s3cret-pass@redis:6379/0").as_deref(), Some("s3cret-pass"));
        assert_eq!(redis_url_password("rediss://errand:p%40ss@h/0").as_deref(), Some("p@ss"));
        assert_eq!(redis_url_password("redis://redis:6379/0"), None);
        assert_eq!(redis_url_password("redis://user@redis:6379/0").as_deref(), Some("user"));
    }
}
