//! How failures become HTTP answers, and the one place they are logged.
//!
//! Two audiences, two types:
//!
//! - [`ApiError`] for the JSON API: `{"error":{"code","message"}}` with the status a
//!   script or the dashboard can act on. Messages are written for the caller and
//!   never carry internals (SQL, hostnames, ids of other users); the cause goes to
//!   the log instead.
//! - [`WebhookError`] for Twilio's webhooks. Twilio reads only the status, so the
//!   body is a short plain-text reason for whoever debugs the integration. The rule
//!   that matters: a message that was not durably recorded answers `503`, never
//!   `200`, so it is visibly not acknowledged.
//!
//! Both log in `into_response`, which runs inside the request's span: server-side
//! failures once at `error` with their cause chain, refusals of bad input at
//! `debug` (they are the caller's problem, and a flood of them must not flood logs).

use std::error::Error as StdError;

use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use sidekick_store::StoreError;

/// Seconds a client should wait before retrying after a `503`.
const RETRY_UNAVAILABLE: &str = "5";
/// Seconds to wait after a `409`: a concurrent writer usually finishes within one.
const RETRY_CONFLICT: &str = "1";

/// An error of the JSON API. Handlers return `Result<_, ApiError>`; `?` on a
/// [`StoreError`] picks the status from the store's own classification.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input (query string, JSON syntax). The message says what to fix.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No bearer token or session cookie, or one that is not valid (expired, signed out).
    #[error("missing or invalid bearer token or session")]
    Unauthorized,
    /// Signed in with the cookie but without the session's CSRF token on a
    /// state-changing request, or with the wrong one. The message says how to send it.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A sign-in code was not accepted. `code` is the stable `error.code`
    /// (`wrong_code`, `code_expired`, `too_many_attempts`, `no_code`); the message
    /// says what to do next.
    #[error("sign-in refused: {code}")]
    SignInRefused { code: &'static str, message: String },
    /// Too many requests from this number or address; retry after the given time.
    #[error("rate limited for {}s", retry_after.as_secs())]
    RateLimited { retry_after: std::time::Duration },
    /// Nothing of the caller's by that id. Also the answer for another user's ids.
    #[error("not found")]
    NotFound,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// The request conflicts with the current state (a second factor is on
    /// already). Not retryable as is; the message says what to do first.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Well-formed input that breaks a rule (an empty message). The message says which.
    #[error("unprocessable: {0}")]
    Unprocessable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::SignInRefused { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Store(e) => match e {
                StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                StoreError::Conflict { .. } => StatusCode::CONFLICT,
                StoreError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
                // The user's data key is gone: their account was deleted.
                StoreError::NoKey(_) => StatusCode::NOT_FOUND,
                StoreError::Sealed(_) | StoreError::Corrupt(_) | StoreError::Database(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
        }
    }

    /// A stable, machine-readable code for the `error.code` field.
    pub fn code(&self) -> &'static str {
        if let Self::SignInRefused { code, .. } = self {
            return code;
        }
        match self.status() {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "internal",
        }
    }

    /// What the caller is told: enough to act on, nothing about our internals.
    fn public_message(&self) -> String {
        match self {
            Self::BadRequest(m)
            | Self::Unprocessable(m)
            | Self::Forbidden(m)
            | Self::Conflict(m) => m.clone(),
            Self::SignInRefused { message, .. } => message.clone(),
            Self::Unauthorized => {
                "sign in, or send a valid API token as 'Authorization: Bearer <token>'".into()
            }
            Self::RateLimited { retry_after } => format!(
                "too many requests; try again in {} seconds",
                retry_after.as_secs().max(1)
            ),
            Self::NotFound => "not found".into(),
            Self::PayloadTooLarge => format!(
                "the request body is larger than {} bytes",
                crate::MAX_BODY_BYTES
            ),
            Self::UnsupportedMediaType => "send JSON with 'Content-Type: application/json'".into(),
            Self::Store(e) => match e {
                StoreError::Unavailable(_) => "temporarily unavailable, try again shortly".into(),
                StoreError::Conflict { .. } => {
                    "a concurrent change is in progress, try again".into()
                }
                StoreError::Rejected(_) => "that is not possible in the current state".into(),
                StoreError::NoKey(_) => "not found".into(),
                _ => "something went wrong on our side; it has been logged".into(),
            },
        }
    }

    fn log(&self) {
        if self.status().is_server_error() {
            tracing::error!(error = %cause_chain(self), status = self.status().as_u16(), "api request failed");
        } else {
            tracing::debug!(error = %self, status = self.status().as_u16(), "api request refused");
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let body = json!({"error": {"code": self.code(), "message": self.public_message()}});
        let retry_after = match &self {
            Self::RateLimited { retry_after } => Some(retry_after.as_secs().max(1)),
            _ => None,
        };
        let bearer_challenge = matches!(self, Self::Unauthorized);
        // Only a store conflict (a concurrent writer) settles by retrying.
        let transient = matches!(self, Self::Store(_));
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(seconds) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_UNAVAILABLE));
            }
            StatusCode::CONFLICT if transient => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_CONFLICT));
            }
            StatusCode::UNAUTHORIZED if bearer_challenge => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// An error of a Twilio webhook.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The body is not `application/x-www-form-urlencoded` text Twilio would send.
    #[error("malformed form body")]
    MalformedForm,
    #[error("request body too large")]
    PayloadTooLarge,
    /// `X-Twilio-Signature` is missing or does not match: not from Twilio, or
    /// `SIDEKICK_PUBLIC_URL` differs from the URL Twilio was configured with.
    #[error("missing or invalid X-Twilio-Signature")]
    BadSignature,
    #[error("required field {0} is missing")]
    MissingField(&'static str),
    #[error("field {0} is not valid")]
    InvalidField(&'static str),
    /// The message could not be recorded; Twilio must not take this as delivered.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl WebhookError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedForm | Self::MissingField(_) | Self::InvalidField(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadSignature => StatusCode::FORBIDDEN,
            // Whatever went wrong, the message is not recorded: never 200, never a
            // 4xx that would make Twilio give up as if the request were bad.
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn log(&self) {
        match self {
            Self::Store(_) => tracing::error!(error = %cause_chain(self), "webhook not recorded"),
            Self::BadSignature => {
                tracing::warn!("webhook refused: bad signature (not Twilio, or SIDEKICK_PUBLIC_URL differs from Twilio's URL)")
            }
            other => tracing::debug!(error = %other, "webhook refused"),
        }
    }
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let reason = match &self {
            Self::Store(_) => "temporarily unavailable".to_string(),
            other => other.to_string(),
        };
        let mut response = (status, reason).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_UNAVAILABLE));
        }
        response
    }
}

/// An error and every source below it, `outer: inner: innermost`, for one log line.
pub(crate) fn cause_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn store_errors_map_to_statuses_without_leaking_internals() {
        let unavailable = ApiError::from(StoreError::Unavailable(
            "connect to 10.0.0.7:5432 refused".into(),
        ));
        let response = unavailable.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "5");
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], "unavailable");
        assert!(!body.to_string().contains("10.0.0.7"));

        let conflict = ApiError::from(StoreError::Conflict {
            aggregate: "conversation",
            id: "x".into(),
            attempts: 12,
        });
        let response = conflict.into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()[RETRY_AFTER], "1");

        assert_eq!(
            ApiError::from(StoreError::Rejected("r".into())).status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let corrupt = ApiError::from(StoreError::Corrupt("column payload: expected json".into()));
        assert_eq!(corrupt.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body_json(corrupt.into_response())
            .await
            .to_string()
            .contains("payload"));
    }

    #[test]
    fn every_store_error_in_a_webhook_is_503() {
        for e in [
            StoreError::Unavailable("down".into()),
            StoreError::Conflict {
                aggregate: "conversation",
                id: "x".into(),
                attempts: 12,
            },
            StoreError::Rejected("no".into()),
            StoreError::Corrupt("bad".into()),
        ] {
            let response = WebhookError::from(e).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[RETRY_AFTER], "5");
        }
    }

    #[test]
    fn cause_chains_join_every_source() {
        let io = std::io::Error::other("connection refused");
        let outer = sqlx::Error::Io(io);
        assert!(cause_chain(&outer).contains("connection refused"));
    }
}
