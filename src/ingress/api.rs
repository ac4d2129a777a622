//! The job API: `GET /api/jobs` and `GET /api/jobs/{id}`, behind a bearer token. Without a
//! configured token the API does not exist (404), so a forgotten token never opens it.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::{StatusCode, header};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::job::JobId;

/// How many jobs `GET /api/jobs` returns unless `?limit=` says otherwise.
const DEFAULT_LIST_LIMIT: usize = 100;
/// The most `?limit=` may ask for.
const MAX_LIST_LIMIT: usize = 1000;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/api/jobs", get(list_jobs)).route("/api/jobs/{id}", get(get_job))
}

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("missing or wrong bearer token")]
    Unauthorized,
    #[error("the queue is unavailable")]
    QueueUnavailable,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::QueueUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        let body = Json(json!({ "error": self.to_string() }));
        if status == StatusCode::UNAUTHORIZED {
            (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}

fn queue_unavailable(error: anyhow::Error) -> ApiError {
    tracing::error!(error = format!("{error:#}"), "job API could not read the queue");
    ApiError::QueueUnavailable
}

/// Proof that the request carries the API token.
struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let expected = state.0.settings.api_token.as_ref().ok_or(ApiError::NotFound)?;
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(ApiError::Unauthorized)?;
        // Hashing first makes the comparison constant-time in the length too.
        let given = Sha256::digest(given.as_bytes());
        let expected = Sha256::digest(expected.expose_secret().as_bytes());
        if bool::from(given.as_slice().ct_eq(expected.as_slice())) { Ok(Self) } else { Err(ApiError::Unauthorized) }
    }
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

async fn list_jobs(
    _: Authorized,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIST_LIMIT).min(MAX_LIST_LIMIT);
    let jobs = state.0.queue.list(limit).await.map_err(queue_unavailable)?;
    Ok(redacted_json(&state, &json!({ "jobs": jobs })))
}

async fn get_job(_: Authorized, State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id: JobId = id.parse().map_err(|_| ApiError::NotFound)?;
    let record = state.0.queue.get(&id).await.map_err(queue_unavailable)?.ok_or(ApiError::NotFound)?;
    Ok(redacted_json(&state, &record))
}

/// `value` as a JSON answer that passed the process's redactor: job records hold requesters'
/// text and errors, which may hold anything.
fn redacted_json(state: &AppState, value: &impl serde::Serialize) -> Response {
    match serde_json::to_string(value) {
        Ok(text) => {
            ([(header::CONTENT_TYPE, "application/json")], state.0.settings.redactor.redact(&text)).into_response()
        }
        Err(error) => {
            tracing::error!(%error, "a job record could not be written as JSON");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
