//! GitHub webhook signatures (`X-Hub-Signature-256`): HMAC-SHA256 over the raw body, checked in
//! constant time against every configured secret, so a secret can be rotated without downtime.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The prefix GitHub puts before the hex digest; the legacy `sha1=` header is not accepted.
const SHA256_PREFIX: &str = "sha256=";

/// Why a webhook's signature was refused. Every variant answers 401; the variant is for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Hub-Signature-256 header")]
    Missing,
    #[error("the signature does not start with `sha256=`")]
    NotSha256,
    #[error("the signature is not hex")]
    NotHex,
    #[error("the signature matches none of the configured secrets")]
    Mismatch,
    #[error("no webhook secret is configured")]
    NoSecrets,
}

/// Parses `ERRAND_GITHUB_WEBHOOK_SECRET`: comma-separated, surrounding spaces ignored, empty
/// entries dropped.
pub fn parse_secrets(value: &str) -> Vec<SecretString> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| SecretString::from(s.to_owned())).collect()
}

/// Checks an `X-Hub-Signature-256` header value against the raw body bytes; any one of
/// `secrets` may have signed it (more than one is valid during a rotation).
pub fn verify_signature(secrets: &[SecretString], header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header.strip_prefix(SHA256_PREFIX.as_bytes()).ok_or(SignatureError::NotSha256)?;
    let signature = hex::decode(hex_digest).map_err(|_| SignatureError::NotHex)?;
    // Anyone can sign with an empty key, so an empty secret verifies nothing.
    let mut secrets = secrets.iter().filter(|s| !s.expose_secret().is_empty()).peekable();
    if secrets.peek().is_none() {
        return Err(SignatureError::NoSecrets);
    }
    // Every secret is tried; `verify_slice` compares in constant time. Which secret matched
    // (its index) is not worth hiding.
    let mut matched = false;
    for secret in secrets {
        matched |= mac(secret, body).verify_slice(&signature).is_ok();
    }
    if matched { Ok(()) } else { Err(SignatureError::Mismatch) }
}

fn mac(secret: &SecretString, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    mac
}

/// The `X-Hub-Signature-256` value GitHub would send for `body` signed with `secret`.
pub fn github_signature(secret: &SecretString, body: &[u8]) -> String {
    format!("{SHA256_PREFIX}{}", hex::encode(mac(secret, body).finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub Docs, "Validating webhook deliveries" (tests/data/vectors.md §1).
    const DOCS_SECRET: &str = "It's a Secret to Everybody";
    const DOCS_BODY: &[u8] = b"Hello, World!";
    const DOCS_HEADER: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn secrets(values: &[&str]) -> Secrets {
        Secrets(values.iter().map(|s| SecretString::from(s.to_string())).collect())
    }

    /// The secrets under test, with `verify` as the ingress calls it.
    struct Secrets(Vec<SecretString>);

    impl Secrets {
        fn verify(&self, header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
            verify_signature(&self.0, header, body)
        }
    }

    #[test]
    fn githubs_documented_vector_verifies() {
        assert_eq!(secrets(&[DOCS_SECRET]).verify(Some(DOCS_HEADER.as_bytes()), DOCS_BODY), Ok(()));
    }

    #[test]
    fn signing_reproduces_githubs_documented_vector() {
        assert_eq!(github_signature(&SecretString::from(DOCS_SECRET.to_owned()), DOCS_BODY), DOCS_HEADER);
    }

    #[test]
    fn uppercase_hex_verifies() {
        let header = DOCS_HEADER.to_uppercase().replace("SHA256=", "sha256=");
        assert_eq!(secrets(&[DOCS_SECRET]).verify(Some(header.as_bytes()), DOCS_BODY), Ok(()));
    }

    #[test]
    fn any_configured_secret_verifies_during_a_rotation() {
        let both = secrets(&["new secret", DOCS_SECRET]);
        assert_eq!(both.verify(Some(DOCS_HEADER.as_bytes()), DOCS_BODY), Ok(()));
        let new = github_signature(&SecretString::from("new secret".to_owned()), DOCS_BODY);
        assert_eq!(both.verify(Some(new.as_bytes()), DOCS_BODY), Ok(()));
        assert_eq!(
            secrets(&["new secret"]).verify(Some(DOCS_HEADER.as_bytes()), DOCS_BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_changed_body_does_not_verify() {
        let result = secrets(&[DOCS_SECRET]).verify(Some(DOCS_HEADER.as_bytes()), b"Hello, World?");
        assert_eq!(result, Err(SignatureError::Mismatch));
    }

    #[test]
    fn a_missing_header_is_refused() {
        assert_eq!(secrets(&[DOCS_SECRET]).verify(None, DOCS_BODY), Err(SignatureError::Missing));
    }

    #[test]
    fn a_sha1_header_is_refused() {
        let sha1 = b"sha1=7d38cdd689735b008b3c702edd92eea23791c5f6";
        assert_eq!(secrets(&[DOCS_SECRET]).verify(Some(sha1), DOCS_BODY), Err(SignatureError::NotSha256));
        let bare = DOCS_HEADER.trim_start_matches("sha256=");
        assert_eq!(secrets(&[DOCS_SECRET]).verify(Some(bare.as_bytes()), DOCS_BODY), Err(SignatureError::NotSha256));
    }

    #[test]
    fn bad_hex_is_refused() {
        for header in ["sha256=zz", "sha256=757", "sha256= 757107ea"] {
            assert_eq!(secrets(&[DOCS_SECRET]).verify(Some(header.as_bytes()), DOCS_BODY), Err(SignatureError::NotHex));
        }
    }

    #[test]
    fn a_truncated_signature_is_refused() {
        let truncated = &DOCS_HEADER[..DOCS_HEADER.len() - 2];
        assert_eq!(
            secrets(&[DOCS_SECRET]).verify(Some(truncated.as_bytes()), DOCS_BODY),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn empty_secrets_verify_nothing() {
        assert!(parse_secrets(" , ").is_empty());
        let empty_key_signature = github_signature(&SecretString::from(String::new()), DOCS_BODY);
        assert_eq!(
            secrets(&[]).verify(Some(empty_key_signature.as_bytes()), DOCS_BODY),
            Err(SignatureError::NoSecrets)
        );
        assert_eq!(
            secrets(&[""]).verify(Some(empty_key_signature.as_bytes()), DOCS_BODY),
            Err(SignatureError::NoSecrets)
        );
    }

    #[test]
    fn comma_separated_secrets_are_trimmed() {
        let parsed = parse_secrets("old, It's a Secret to Everybody ,");
        assert_eq!(parsed.len(), 2);
        assert_eq!(verify_signature(&parsed, Some(DOCS_HEADER.as_bytes()), DOCS_BODY), Ok(()));
    }

    #[test]
    fn secrets_do_not_print() {
        let printed = format!("{:?}", parse_secrets(DOCS_SECRET));
        assert!(!printed.contains("Secret to"), "{printed}");
        assert!(printed.to_lowercase().contains("redacted"), "{printed}");
    }
}
