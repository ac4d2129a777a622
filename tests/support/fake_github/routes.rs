//! The HTTP side of the fake: the one axum handler, which holds, times out or carries out each
//! request (fault injection: [`FakeGithub::fail_next`](super::FakeGithub::fail_next),
//! `time_out_next`, `hold_next`); the request recorder; the route table, which sends each call
//! to its endpoint (in `auth.rs`, `repos.rs`, `issues.rs`, `pulls.rs`, or git's smart HTTP in
//! `git.rs`); and what the endpoints' replies share: errors, pagination, body checks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::RecordedRequest;
use super::auth::Caller;
use super::json::TEMPLATES;
use super::world::{ReactionTarget, World};

/// GitHub refuses comment and pull request bodies longer than this many characters.
const MAX_BODY_CHARS: usize = 65_536;

/// An answer before it becomes an HTTP response.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Option<Value>,
    /// A body that is not JSON (git's smart HTTP); its type is in `headers`.
    pub(super) raw: Option<Vec<u8>>,
    pub(super) headers: Vec<(&'static str, String)>,
    /// False when no endpoint matched.
    pub(super) matched: bool,
}

impl Reply {
    pub(super) fn json(status: u16, body: Value) -> Reply {
        Reply { status, body: Some(body), raw: None, headers: Vec::new(), matched: true }
    }

    pub(super) fn error(status: u16, message: &str, documentation_url: &str) -> Reply {
        Reply::json(
            status,
            json!({ "message": message, "documentation_url": documentation_url, "status": status.to_string() }),
        )
    }

    pub(super) fn not_found(documentation_url: &str) -> Reply {
        Reply::error(404, "Not Found", documentation_url)
    }

    pub(super) fn unauthenticated() -> Reply {
        Reply::error(401, "Requires authentication", "https://docs.github.com/rest")
    }

    fn bad_credentials() -> Reply {
        Reply::error(401, "Bad credentials", "https://docs.github.com/rest")
    }

    /// GitHub's 422 with `errors`, shaped like the recorded one.
    pub(super) fn validation_failed(errors: Value, documentation_url: &str) -> Reply {
        let mut body = TEMPLATES.validation_failed.clone();
        body["errors"] = errors;
        body["documentation_url"] = json!(documentation_url);
        body["status"] = json!("422");
        Reply::json(422, body)
    }

    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = match (self.body, self.raw) {
            (Some(body), _) => (status, axum::Json(body)).into_response(),
            (None, Some(raw)) => (status, raw).into_response(),
            (None, None) => status.into_response(),
        };
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

/// The one axum handler: everything is dispatched by [`World::answer`] under the world's lock,
/// so each request sees and leaves a consistent world. The git calls it makes block, so it runs
/// on the blocking pool.
pub(super) async fn serve_request(
    axum::extract::State(world): axum::extract::State<Arc<Mutex<World>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let held = {
        let mut world = world.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let at = world.holds.iter().position(|hold| hold.matches(method.as_str(), uri.path(), &body));
        at.map(|at| world.holds.remove(at))
    };
    if let Some(hold) = held {
        hold.arrived.send_replace(true);
        if hold.released.await.is_err() {
            return Reply::error(503, "Service Unavailable (held by the test, then dropped)", "").into_response();
        }
    }
    let timeout = {
        let mut world = world.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let at = world.timeouts.iter().position(|t| t.matches(method.as_str(), uri.path(), &body));
        at.map(|at| {
            world.timeouts[at].remaining -= 1;
            let after_effect = world.timeouts[at].after_effect;
            world.timeouts.retain(|t| t.remaining > 0);
            (after_effect, world.stopped.clone())
        })
    };
    if let Some((after_effect, stopped)) = timeout {
        let world = world.clone();
        let recorded = tokio::task::spawn_blocking(move || {
            let mut world = world.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if after_effect {
                world.answer(&method, &uri, &headers, &body);
            } else {
                world.record_unanswered(&method, &uri, &headers, &body);
            }
            if let Some(request) = world.requests.last_mut() {
                request.status = 0;
            }
        })
        .await;
        if let Err(panic) = recorded {
            return Reply::error(500, &format!("the fake GitHub panicked: {panic}"), "").into_response();
        }
        // Never answered while the fake runs: only the client's time-out ends the request.
        stopped.cancelled().await;
        return Reply::error(504, "Gateway Timeout (the fake GitHub stopped)", "").into_response();
    }
    let answer = tokio::task::spawn_blocking(move || {
        let mut world = world.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        world.answer(&method, &uri, &headers, &body)
    })
    .await;
    match answer {
        Ok(reply) => reply.into_response(),
        Err(panic) => Reply::error(500, &format!("the fake GitHub panicked: {panic}"), "").into_response(),
    }
}

/// A request, parsed.
pub(super) struct Call {
    method: String,
    segments: Vec<String>,
    query: HashMap<String, String>,
    pub(super) body: Value,
    pub(super) caller: Caller,
}

impl Call {
    pub(super) fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    pub(super) fn text(&self, field: &str) -> Option<&str> {
        self.body.get(field).and_then(Value::as_str)
    }
}

impl World {
    fn answer(&mut self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Reply {
        let path = uri.path().to_owned();
        let raw_query = uri.query().unwrap_or_default().to_owned();
        let authorization = headers.get(http_authorization()).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (auth, caller) = self.authenticate(authorization.as_deref());
        let json_body = if body.is_empty() { None } else { serde_json::from_slice::<Value>(body).ok() };
        let method = method.as_str().to_owned();

        let fault = self.faults.iter_mut().find(|f| f.matches(&method, &path)).map(|f| {
            f.remaining -= 1;
            (f.status, f.after_effect)
        });
        self.faults.retain(|f| f.remaining > 0);

        let reply = match fault {
            Some((status, false)) => injected_failure(status),
            _ if self.serves_git_over_http(&path) => {
                let done = self.git_http_backend(&method, uri, headers, body);
                match fault {
                    Some((status, true)) => Reply { matched: done.matched, ..injected_failure(status) },
                    _ => done,
                }
            }
            _ if !body.is_empty() && json_body.is_none() => {
                Reply::error(400, "Problems parsing JSON", "https://docs.github.com/rest")
            }
            _ => {
                let call = Call {
                    method: method.clone(),
                    segments: path
                        .trim_matches('/')
                        .split('/')
                        .map(|segment| percent_encoding::percent_decode_str(segment).decode_utf8_lossy().into_owned())
                        .collect(),
                    query: form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect(),
                    body: json_body.clone().unwrap_or(Value::Null),
                    caller,
                };
                let done = self.route(&call);
                match fault {
                    Some((status, true)) => Reply { matched: done.matched, ..injected_failure(status) },
                    _ => done,
                }
            }
        };
        self.requests.push(RecordedRequest {
            method,
            path,
            query: raw_query,
            auth,
            authorization,
            body: json_body,
            status: reply.status,
            matched: reply.matched,
            at: std::time::Instant::now(),
        });
        reply
    }

    /// Records a request that is not carried out (a time-out before it had any effect).
    fn record_unanswered(&mut self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) {
        let authorization = headers.get(http_authorization()).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (auth, _) = self.authenticate(authorization.as_deref());
        self.requests.push(RecordedRequest {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or_default().to_owned(),
            auth,
            authorization,
            body: serde_json::from_slice(body).ok(),
            status: 0,
            matched: true,
            at: std::time::Instant::now(),
        });
    }

    fn route(&mut self, call: &Call) -> Reply {
        if matches!(call.caller, Caller::BadCredentials) {
            return Reply::bad_credentials();
        }
        let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
        let method = call.method.as_str();
        match (method, segments.as_slice()) {
            ("GET", ["user"]) => self.authenticated_user(call),
            ("POST", ["app", "installations", id, "access_tokens"]) => self.mint_installation_token(call, id),
            ("GET", ["repos", owner, name, "installation"]) => self.repository_installation(call, owner, name),
            (_, ["repos", owner, name, rest @ ..]) => {
                if matches!(call.caller, Caller::App) {
                    // The App's JWT only opens `/app` endpoints; repository calls need an
                    // installation token.
                    return Reply::error(403, "Resource not accessible by integration", "https://docs.github.com/rest");
                }
                let full_name = format!("{owner}/{name}");
                if !self.repos.contains_key(&full_name) {
                    return Reply::not_found("https://docs.github.com/rest/repos/repos#get-a-repository");
                }
                self.route_repo(call, &full_name, rest)
            }
            _ => unmatched(),
        }
    }

    fn route_repo(&mut self, call: &Call, repo: &str, rest: &[&str]) -> Reply {
        let writes = call.method != "GET";
        if writes && call.caller.login().is_none() && !matches!(rest, ["check-runs", ..]) {
            return Reply::unauthenticated();
        }
        match (call.method.as_str(), rest) {
            ("GET", []) => Reply::json(200, self.repo_json(self.repo(repo))),
            ("GET", ["contents"]) => self.contents(call, repo, ""),
            ("GET", ["contents", path @ ..]) => self.contents(call, repo, &path.join("/")),
            ("GET", ["collaborators", user, "permission"]) => self.permission(repo, user),
            ("GET", ["branches", branch @ ..]) if !branch.is_empty() => self.get_branch(repo, &branch.join("/")),
            ("GET", ["issues", number]) => self.get_issue(repo, number),
            ("GET", ["issues", number, "comments"]) => self.list_comments(call, repo, number),
            ("POST", ["issues", number, "comments"]) => self.create_comment(call, repo, number),
            ("GET", ["issues", "comments", id]) => self.get_comment(repo, id),
            ("PATCH" | "POST", ["issues", "comments", id]) => self.update_comment(call, repo, id),
            ("POST", ["issues", "comments", id, "reactions"]) => {
                self.react(call, repo, ReactionTarget::IssueComment, id)
            }
            ("POST", ["issues", number, "reactions"]) => self.react(call, repo, ReactionTarget::Issue, number),
            ("GET", ["pulls"]) => self.list_pulls(call, repo),
            ("POST", ["pulls"]) => self.create_pull(call, repo),
            ("GET", ["pulls", "comments", id]) => self.get_review_comment(repo, id),
            ("PATCH", ["pulls", "comments", id]) => self.update_review_comment(call, repo, id),
            ("POST", ["pulls", "comments", id, "reactions"]) => {
                self.react(call, repo, ReactionTarget::ReviewComment, id)
            }
            ("GET", ["pulls", number]) => self.get_pull(repo, number),
            ("PATCH", ["pulls", number]) => self.update_pull(call, repo, number),
            ("GET", ["pulls", number, "comments"]) => self.list_review_comments(call, repo, number, None),
            ("POST", ["pulls", number, "comments", id, "replies"]) => {
                self.reply_to_review_comment(call, repo, number, id)
            }
            ("GET", ["pulls", number, "reviews"]) => self.list_reviews(call, repo, number),
            ("GET", ["pulls", number, "reviews", id]) => self.get_review(repo, number, id),
            ("GET", ["pulls", number, "reviews", id, "comments"]) => {
                self.list_review_comments(call, repo, number, Some(id))
            }
            ("POST", ["check-runs"]) => self.create_check_run(call, repo),
            ("PATCH", ["check-runs", id]) => self.update_check_run(call, repo, id),
            _ => unmatched(),
        }
    }

    /// One page of `items` (`per_page` up to 100, default 30) with GitHub's `Link` header.
    pub(super) fn paginate(&self, call: &Call, url: &str, items: Vec<Value>) -> Reply {
        let per_page = call.query("per_page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(30).clamp(1, 100);
        let page = call.query("page").and_then(|p| p.parse::<usize>().ok()).unwrap_or(1).max(1);
        let last = items.len().div_ceil(per_page).max(1);
        let mut links = Vec::new();
        let link = |n: usize, rel: &str| format!("<{url}?per_page={per_page}&page={n}>; rel=\"{rel}\"");
        if page < last {
            links.push(link(page + 1, "next"));
            links.push(link(last, "last"));
        }
        if page > 1 {
            links.push(link(1, "first"));
            links.push(link(page - 1, "prev"));
        }
        let page_items: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
        let mut reply = Reply::json(200, Value::Array(page_items));
        if !links.is_empty() {
            reply.headers.push(("link", links.join(", ")));
        }
        reply
    }
}

/// GitHub's 422 for a body over [`MAX_BODY_CHARS`] characters.
pub(super) fn body_too_long(resource: &str, body: Option<&str>, documentation_url: &str) -> Option<Reply> {
    body.filter(|b| b.chars().count() > MAX_BODY_CHARS).map(|_| {
        Reply::validation_failed(
            json!([{
                "resource": resource,
                "code": "custom",
                "field": "body",
                "message": format!("body is too long (maximum is {MAX_BODY_CHARS} characters)"),
            }]),
            documentation_url,
        )
    })
}

/// The `body` a create or edit call must carry, or GitHub's answer to a missing or too long one.
pub(super) fn required_body<'c>(call: &'c Call, resource: &str, documentation_url: &str) -> Result<&'c str, Reply> {
    let Some(body) = call.text("body") else {
        return Err(Reply::validation_failed(
            json!([{"resource": resource, "code": "missing_field", "field": "body"}]),
            documentation_url,
        ));
    };
    match body_too_long(resource, Some(body), documentation_url) {
        Some(too_long) => Err(too_long),
        None => Ok(body),
    }
}

fn unmatched() -> Reply {
    Reply { matched: false, ..Reply::not_found("https://docs.github.com/rest") }
}

/// The error [`FakeGithub::fail_next`](super::FakeGithub::fail_next) asked for, with GitHub's
/// wording and headers.
fn injected_failure(status: u16) -> Reply {
    match status {
        403 | 429 => {
            let mut reply = Reply::error(
                status,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
            );
            reply.headers.push(("retry-after", "1".to_owned()));
            reply
        }
        500..=599 => Reply::json(status, json!({ "message": "Server Error" })),
        _ => Reply::error(status, "Injected failure", "https://docs.github.com/rest"),
    }
}

fn http_authorization() -> axum::http::HeaderName {
    axum::http::header::AUTHORIZATION
}
