//! Signed-request helpers: GitHub's `X-Hub-Signature-256`, computed here on its own (not with
//! the code under test), and a client that posts signed webhooks.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The `X-Hub-Signature-256` header GitHub sends for `body` signed with `secret`.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What the ingress answered: the status and the body as JSON (`Null` when it is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub json: serde_json::Value,
}

/// A webhook as GitHub would deliver it, with the headers a test may leave out or forge.
#[derive(Debug, Clone)]
pub struct Webhook<'a> {
    pub event: Option<&'a str>,
    pub delivery: Option<&'a str>,
    /// The full `X-Hub-Signature-256` value; `None` sends no signature at all.
    pub signature: Option<String>,
    pub body: Vec<u8>,
}

impl<'a> Webhook<'a> {
    /// `body` for `event`, delivered as `delivery` and signed with `secret`.
    pub fn signed(event: &'a str, delivery: &'a str, body: &[u8], secret: &str) -> Self {
        Webhook {
            event: Some(event),
            delivery: Some(delivery),
            signature: Some(github_signature(secret, body)),
            body: body.to_vec(),
        }
    }

    /// Posts the webhook to `{base_url}/github/webhook`.
    pub async fn post(&self, http: &reqwest::Client, base_url: &str) -> Answer {
        let mut request = http
            .post(format!("{base_url}/github/webhook"))
            .header("Content-Type", "application/json")
            .header("User-Agent", "GitHub-Hookshot/test")
            .body(self.body.clone());
        if let Some(event) = self.event {
            request = request.header("X-GitHub-Event", event);
        }
        if let Some(delivery) = self.delivery {
            request = request.header("X-GitHub-Delivery", delivery);
        }
        if let Some(signature) = &self.signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        let response = request.send().await.expect("the ingress answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("the answer's body");
        Answer { status, json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null) }
    }
}

/// Posts `body` for `event` as delivery `delivery`, signed with `secret`.
pub async fn post_signed_webhook(
    http: &reqwest::Client,
    base_url: &str,
    event: &str,
    delivery: &str,
    body: &[u8],
    secret: &str,
) -> Answer {
    Webhook::signed(event, delivery, body, secret).post(http, base_url).await
}
