//! Who a request comes from: a plain (personal access) token, the GitHub App's JWT, or an
//! installation token this fake minted (or one it never minted, or that expired); and the
//! endpoints for those callers: `GET /user`, the repository's installation, minting an
//! installation token.

use base64::Engine as _;
use serde_json::{Value, json};

use super::json::TEMPLATES;
use super::routes::{Call, Reply};
use super::world::World;
use super::{APP_BOT_LOGIN, AuthKind, INSTALLATION_ID, TOKEN_BOT_LOGIN};

/// How long a minted installation token lives, as on GitHub.
const TOKEN_LIFETIME: chrono::Duration = chrono::Duration::hours(1);

/// Who made a request, as far as authoring goes.
pub(super) enum Caller {
    Anonymous,
    User(String),
    App,
    Installation,
    BadCredentials,
}

impl Caller {
    pub(super) fn login(&self) -> Option<&str> {
        match self {
            Caller::User(login) => Some(login),
            Caller::Installation => Some(APP_BOT_LOGIN),
            _ => None,
        }
    }
}

impl World {
    pub(super) fn authenticate(&self, authorization: Option<&str>) -> (AuthKind, Caller) {
        let Some(token) = authorization.and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("token ")))
        else {
            return (AuthKind::Anonymous, Caller::Anonymous);
        };
        if token.starts_with("ghs_") {
            return match self.installation_tokens.get(token) {
                Some((installation_id, expires)) if *expires > chrono::Utc::now() => {
                    (AuthKind::Installation { installation_id: *installation_id }, Caller::Installation)
                }
                _ => (AuthKind::BadCredentials, Caller::BadCredentials),
            };
        }
        if let Some(app_id) = jwt_issuer(token) {
            return (AuthKind::AppJwt { app_id }, Caller::App);
        }
        (AuthKind::Token, Caller::User(TOKEN_BOT_LOGIN.to_owned()))
    }

    pub(super) fn authenticated_user(&self, call: &Call) -> Reply {
        match &call.caller {
            Caller::User(login) => Reply::json(200, self.user_json(login)),
            Caller::Installation | Caller::App => Reply::error(
                403,
                "Resource not accessible by integration",
                "https://docs.github.com/rest/users/users#get-the-authenticated-user",
            ),
            _ => Reply::unauthenticated(),
        }
    }

    /// `GET /repos/{owner}/{repo}/installation` (App JWT): the installation that holds the
    /// repository, which is every repository of this fake's world.
    pub(super) fn repository_installation(&self, call: &Call, owner: &str, name: &str) -> Reply {
        const DOCS: &str =
            "https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app";
        if !matches!(call.caller, Caller::App) {
            return Reply::error(401, "A JSON web token could not be decoded", "https://docs.github.com/rest");
        }
        if !self.repos.contains_key(&format!("{owner}/{name}")) {
            return Reply::not_found(DOCS);
        }
        Reply::json(
            200,
            json!({
                "id": INSTALLATION_ID,
                "account": { "login": owner, "type": "Organization" },
                "repository_selection": "all",
                "target_type": "Organization",
                "permissions": { "contents": "write", "issues": "write", "pull_requests": "write", "metadata": "read" },
            }),
        )
    }

    pub(super) fn mint_installation_token(&mut self, call: &Call, id: &str) -> Reply {
        const DOCS: &str = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app";
        if !matches!(call.caller, Caller::App) {
            return Reply::error(401, "A JSON web token could not be decoded", "https://docs.github.com/rest");
        }
        let Some(installation_id) = id.parse::<u64>().ok().filter(|id| *id == INSTALLATION_ID) else {
            return Reply::not_found(DOCS);
        };
        let token = format!("ghs_{}", uuid::Uuid::now_v7().simple()).chars().take(40).collect::<String>();
        let expires = chrono::Utc::now() + TOKEN_LIFETIME;
        self.installation_tokens.insert(token.clone(), (installation_id, expires));
        let mut value = TEMPLATES.installation_token.clone();
        value["token"] = json!(token);
        value["expires_at"] = json!(expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        value["permissions"] = json!({
            "contents": "write", "issues": "write", "pull_requests": "write", "checks": "write", "metadata": "read"
        });
        value["repository_selection"] = json!("all");
        if let Some(fields) = value.as_object_mut() {
            fields.remove("repositories");
        }
        Reply::json(201, value)
    }
}

/// The `iss` of a JWT, if `token` looks like one (its signature is not checked).
fn jwt_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    match &claims["iss"] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
