//! Slack request signatures (`X-Slack-Signature`, version `v0`): HMAC-SHA256 over
//! `v0:{X-Slack-Request-Timestamp}:{raw body}`, inside a five-minute replay window, checked in
//! constant time against every configured signing secret (more than one during a rotation).
//!
//! Decisions:
//! - The timestamp is checked before any HMAC is computed: a replayed or forged old request costs
//!   no hashing, and a stale request is refused even when its signature is genuine.
//! - The hex digest is decoded and the bytes compared (`verify_slice`, constant time), so
//!   upper-case hex verifies too. Slack sends lower case; the letters' case carries no secret (the
//!   digest bytes are the same), and the GitHub verifier (`ingress::signature`) does the same.
//!   What must match is the version (`v0=`, exactly), the length and every digest byte.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The only signature version Slack has published; it prefixes both the base string and the
/// header value.
const VERSION: &str = "v0";

/// How far a request's timestamp may be from now, either way, in seconds (Slack recommends five
/// minutes). Wider lets a captured request be replayed for longer; narrower refuses senders whose
/// clock drifts.
pub const REPLAY_WINDOW_SECS: i64 = 300;

/// Why a Slack request's signature was refused. Every variant answers 401; the variant is for
/// logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SlackSignatureError {
    #[error("no X-Slack-Request-Timestamp header")]
    MissingTimestamp,
    #[error("no X-Slack-Signature header")]
    MissingSignature,
    #[error("X-Slack-Request-Timestamp is not a number of seconds")]
    MalformedTimestamp,
    #[error("X-Slack-Signature is not `v0=` followed by a hex digest")]
    MalformedSignature,
    #[error("the request's timestamp is {age_secs} s from now, more than {REPLAY_WINDOW_SECS} s")]
    Stale {
        /// Now minus the request's timestamp: positive for old requests, negative for future ones.
        age_secs: i64,
    },
    #[error("the signature matches none of the configured signing secrets")]
    Mismatch,
    #[error("no Slack signing secret is configured")]
    NoSecrets,
}

/// Checks a Slack request: its `X-Slack-Request-Timestamp` and `X-Slack-Signature` header values
/// against the raw body bytes, at `now` (injected, so tests and replays can set the clock). Any
/// one of `secrets` may have signed it.
pub fn verify_slack_request(
    secrets: &[SecretString],
    timestamp: Option<&[u8]>,
    signature: Option<&[u8]>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SlackSignatureError> {
    let timestamp = timestamp.ok_or(SlackSignatureError::MissingTimestamp)?;
    let signature = signature.ok_or(SlackSignatureError::MissingSignature)?;
    let seconds = parse_timestamp(timestamp)?;
    let age_secs = now.timestamp().saturating_sub(seconds);
    if age_secs.unsigned_abs() > REPLAY_WINDOW_SECS.unsigned_abs() {
        return Err(SlackSignatureError::Stale { age_secs });
    }
    let hex_digest = signature
        .strip_prefix(VERSION.as_bytes())
        .and_then(|rest| rest.strip_prefix(b"="))
        .ok_or(SlackSignatureError::MalformedSignature)?;
    let digest = hex::decode(hex_digest).map_err(|_| SlackSignatureError::MalformedSignature)?;
    // Anyone can sign with an empty key, so an empty secret verifies nothing.
    let mut secrets = secrets.iter().filter(|s| !s.expose_secret().is_empty()).peekable();
    if secrets.peek().is_none() {
        return Err(SlackSignatureError::NoSecrets);
    }
    // Every secret is tried; `verify_slice` compares in constant time (and refuses a digest of
    // the wrong length). Which secret matched is not worth hiding.
    let mut matched = false;
    for secret in secrets {
        matched |= mac(secret, timestamp, body).verify_slice(&digest).is_ok();
    }
    if matched { Ok(()) } else { Err(SlackSignatureError::Mismatch) }
}

/// The `X-Slack-Signature` value Slack would send for `body` at `timestamp` (the header's exact
/// text) signed with `secret`: what tests and the fake Slack sign requests with.
pub fn slack_signature(secret: &SecretString, timestamp: &str, body: &[u8]) -> String {
    format!("{VERSION}={}", hex::encode(mac(secret, timestamp.as_bytes(), body).finalize().into_bytes()))
}

/// Seconds since the epoch, as Slack writes them: ASCII digits only (no sign, no spaces, no
/// fraction), at most 12 of them so the number cannot overflow.
fn parse_timestamp(timestamp: &[u8]) -> Result<i64, SlackSignatureError> {
    if timestamp.is_empty() || timestamp.len() > 12 || !timestamp.iter().all(u8::is_ascii_digit) {
        return Err(SlackSignatureError::MalformedTimestamp);
    }
    std::str::from_utf8(timestamp)
        .ok()
        .and_then(|digits| digits.parse().ok())
        .ok_or(SlackSignatureError::MalformedTimestamp)
}

/// The HMAC over Slack's base string, `v0:{timestamp}:{body}`, with the timestamp exactly as it
/// arrived (the signed bytes, not a re-formatted number).
fn mac(secret: &SecretString, timestamp: &[u8], body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(VERSION.as_bytes());
    mac.update(b":");
    mac.update(timestamp);
    mac.update(b":");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// Slack's documented signing example (tests/data/vectors.md §2), taken from Slack's own SDK
    /// test; the body is the raw slash-command form stored byte for byte.
    const DOCS_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const DOCS_TIMESTAMP: &str = "1531420618";
    const DOCS_SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const DOCS_BODY: &[u8] = include_bytes!("../../tests/data/slack/slash_command.webhook-collect.form.txt");

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).single().expect("a valid instant")
    }

    /// The moment of Slack's example.
    fn docs_now() -> DateTime<Utc> {
        at(DOCS_TIMESTAMP.parse().unwrap())
    }

    fn secrets(values: &[&str]) -> Vec<SecretString> {
        values.iter().map(|s| SecretString::from((*s).to_owned())).collect()
    }

    /// Verifies with the documented secret at the documented moment, changing one input.
    fn verify(timestamp: &str, signature: &str, body: &[u8]) -> Result<(), SlackSignatureError> {
        verify_slack_request(
            &secrets(&[DOCS_SECRET]),
            Some(timestamp.as_bytes()),
            Some(signature.as_bytes()),
            body,
            docs_now(),
        )
    }

    #[test]
    fn the_stored_body_is_the_documented_one() {
        assert_eq!(DOCS_BODY.len(), 362);
        assert!(DOCS_BODY.starts_with(b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&"));
        assert!(!DOCS_BODY.ends_with(b"\n"));
    }

    #[test]
    fn slacks_documented_vector_verifies() {
        assert_eq!(verify(DOCS_TIMESTAMP, DOCS_SIGNATURE, DOCS_BODY), Ok(()));
    }

    #[test]
    fn signing_reproduces_slacks_documented_vector() {
        let secret = SecretString::from(DOCS_SECRET.to_owned());
        assert_eq!(slack_signature(&secret, DOCS_TIMESTAMP, DOCS_BODY), DOCS_SIGNATURE);
    }

    #[test]
    fn a_changed_body_does_not_verify() {
        // Slack's SDK test appends `------`; a single flipped byte must fail as well.
        let mut appended = DOCS_BODY.to_vec();
        appended.extend_from_slice(b"------");
        assert_eq!(verify(DOCS_TIMESTAMP, DOCS_SIGNATURE, &appended), Err(SlackSignatureError::Mismatch));
        let flipped = String::from_utf8(DOCS_BODY.to_vec()).unwrap().replace("text=&", "text=x&");
        assert_eq!(verify(DOCS_TIMESTAMP, DOCS_SIGNATURE, flipped.as_bytes()), Err(SlackSignatureError::Mismatch));
        assert_eq!(verify(DOCS_TIMESTAMP, DOCS_SIGNATURE, b""), Err(SlackSignatureError::Mismatch));
    }

    #[test]
    fn a_changed_timestamp_does_not_verify() {
        // One second later is well inside the window, so only the HMAC can refuse it.
        assert_eq!(verify("1531420619", DOCS_SIGNATURE, DOCS_BODY), Err(SlackSignatureError::Mismatch));
        // The same number written differently is a different base string.
        assert_eq!(verify("01531420618", DOCS_SIGNATURE, DOCS_BODY), Err(SlackSignatureError::Mismatch));
    }

    #[test]
    fn a_wrong_secret_does_not_verify() {
        let result = verify_slack_request(
            &secrets(&["8f742231b10e8888abcd99yyyzzz85a6"]),
            Some(DOCS_TIMESTAMP.as_bytes()),
            Some(DOCS_SIGNATURE.as_bytes()),
            DOCS_BODY,
            docs_now(),
        );
        assert_eq!(result, Err(SlackSignatureError::Mismatch));
    }

    #[test]
    fn any_configured_secret_verifies_during_a_rotation() {
        let both = secrets(&["the new secret", DOCS_SECRET]);
        let check = |signature: &str| {
            verify_slack_request(
                &both,
                Some(DOCS_TIMESTAMP.as_bytes()),
                Some(signature.as_bytes()),
                DOCS_BODY,
                docs_now(),
            )
        };
        assert_eq!(check(DOCS_SIGNATURE), Ok(()));
        let new = slack_signature(&SecretString::from("the new secret".to_owned()), DOCS_TIMESTAMP, DOCS_BODY);
        assert_eq!(check(&new), Ok(()));
    }

    #[test]
    fn a_truncated_signature_is_refused() {
        // Two hex digits short: still hex, one byte too short for the digest.
        let truncated = &DOCS_SIGNATURE[..DOCS_SIGNATURE.len() - 2];
        assert_eq!(verify(DOCS_TIMESTAMP, truncated, DOCS_BODY), Err(SlackSignatureError::Mismatch));
        // One hex digit short is not hex at all.
        let odd = &DOCS_SIGNATURE[..DOCS_SIGNATURE.len() - 1];
        assert_eq!(verify(DOCS_TIMESTAMP, odd, DOCS_BODY), Err(SlackSignatureError::MalformedSignature));
        assert_eq!(verify(DOCS_TIMESTAMP, "v0=", DOCS_BODY), Err(SlackSignatureError::Mismatch));
    }

    #[test]
    fn another_version_or_no_version_is_refused() {
        let digest = DOCS_SIGNATURE.trim_start_matches("v0=");
        for signature in [format!("v1={digest}"), format!("V0={digest}"), digest.to_owned(), format!("v0:{digest}")] {
            assert_eq!(
                verify(DOCS_TIMESTAMP, &signature, DOCS_BODY),
                Err(SlackSignatureError::MalformedSignature),
                "{signature}"
            );
        }
    }

    #[test]
    fn bad_hex_is_refused() {
        for signature in ["v0=zz", "v0= a2114d57", "v0=a2114d57 "] {
            assert_eq!(
                verify(DOCS_TIMESTAMP, signature, DOCS_BODY),
                Err(SlackSignatureError::MalformedSignature),
                "{signature}"
            );
        }
    }

    #[test]
    fn uppercase_hex_verifies() {
        let upper = format!("v0={}", DOCS_SIGNATURE.trim_start_matches("v0=").to_uppercase());
        assert_eq!(verify(DOCS_TIMESTAMP, &upper, DOCS_BODY), Ok(()));
    }

    #[test]
    fn a_timestamp_outside_five_minutes_is_refused_either_way() {
        let check = |now: i64| {
            verify_slack_request(
                &secrets(&[DOCS_SECRET]),
                Some(DOCS_TIMESTAMP.as_bytes()),
                Some(DOCS_SIGNATURE.as_bytes()),
                DOCS_BODY,
                at(now),
            )
        };
        let ts: i64 = DOCS_TIMESTAMP.parse().unwrap();
        assert_eq!(check(ts + 300), Ok(()));
        assert_eq!(check(ts - 300), Ok(()));
        assert_eq!(check(ts + 301), Err(SlackSignatureError::Stale { age_secs: 301 }));
        assert_eq!(check(ts - 301), Err(SlackSignatureError::Stale { age_secs: -301 }));
        // Today's clock refuses the 2018 example, genuine as it is.
        assert!(matches!(check(Utc::now().timestamp()), Err(SlackSignatureError::Stale { .. })));
    }

    #[test]
    fn the_window_is_checked_before_the_signature() {
        // A stale request with a garbage signature is refused as stale: no HMAC was needed.
        let result = verify_slack_request(
            &secrets(&[DOCS_SECRET]),
            Some(b"1000000000"),
            Some(b"v1=not-even-hex"),
            DOCS_BODY,
            docs_now(),
        );
        assert!(matches!(result, Err(SlackSignatureError::Stale { .. })), "{result:?}");
    }

    #[test]
    fn missing_headers_are_refused() {
        let docs = secrets(&[DOCS_SECRET]);
        let sig = Some(DOCS_SIGNATURE.as_bytes());
        let ts = Some(DOCS_TIMESTAMP.as_bytes());
        assert_eq!(
            verify_slack_request(&docs, None, sig, DOCS_BODY, docs_now()),
            Err(SlackSignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify_slack_request(&docs, ts, None, DOCS_BODY, docs_now()),
            Err(SlackSignatureError::MissingSignature)
        );
    }

    #[test]
    fn malformed_timestamps_are_refused() {
        for timestamp in ["", "-1531420618", "+1531420618", "1531420618.5", " 1531420618", "abc", "9999999999999999999"]
        {
            assert_eq!(
                verify(timestamp, DOCS_SIGNATURE, DOCS_BODY),
                Err(SlackSignatureError::MalformedTimestamp),
                "{timestamp:?}"
            );
        }
    }

    #[test]
    fn empty_secrets_verify_nothing() {
        let empty_key_signature = slack_signature(&SecretString::from(String::new()), DOCS_TIMESTAMP, DOCS_BODY);
        for configured in [secrets(&[]), secrets(&[""])] {
            let result = verify_slack_request(
                &configured,
                Some(DOCS_TIMESTAMP.as_bytes()),
                Some(empty_key_signature.as_bytes()),
                DOCS_BODY,
                docs_now(),
            );
            assert_eq!(result, Err(SlackSignatureError::NoSecrets));
        }
    }
}
