//! CSRF protection for requests the session cookie authenticates.
//!
//! A synchronizer token: each session has its own random token, which pages put in
//! forms (`_csrf`) and scripts send as `X-CSRF-Token`. Another site can make a
//! browser send the cookie (on top-level navigations, SameSite=Lax still allows a
//! GET) but cannot read the token, so every state-changing request must carry it.
//! Bearer-token calls need none: a browser never attaches a bearer token by itself.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::body::{parse, style_of, Style};
use super::session::SignedIn;
use crate::error::ApiError;
use crate::AppState;

/// The header scripts send the token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field pages send the token in.
pub const CSRF_FIELD: &str = "_csrf";

/// Whether `method` may change state (everything but GET, HEAD, OPTIONS, TRACE).
pub(crate) fn changes_state(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Whether `offered` is the session's token, compared in constant time.
pub(crate) fn matches(expected: &str, offered: Option<&str>) -> bool {
    offered.is_some_and(|offered| {
        !expected.is_empty() && bool::from(offered.as_bytes().ct_eq(expected.as_bytes()))
    })
}

/// The token of the `X-CSRF-Token` header, if any.
pub(crate) fn header_token(headers: &HeaderMap) -> Option<&str> {
    headers.get(CSRF_HEADER)?.to_str().ok()
}

/// The refusal of a request without the right token.
pub(crate) fn refused() -> ApiError {
    ApiError::Forbidden(format!(
        "requests signed in with the session cookie must send its CSRF token \
         ('{CSRF_HEADER}' header or '{CSRF_FIELD}' form field; GET /api/me tells it)"
    ))
}

#[derive(Deserialize)]
struct TokenField {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// The CSRF token of a form body (its `_csrf` field), else of the header.
pub(crate) fn offered_token(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    if style_of(headers) == Some(Style::Form) {
        if let Ok(TokenField { csrf: Some(token) }) = serde_urlencoded::from_bytes(body) {
            return Some(token);
        }
    }
    header_token(headers).map(str::to_string)
}

/// A form posted by a signed-in viewer, with a `_csrf` field that matches their
/// session (or the `X-CSRF-Token` header). `T` is the rest of the form; it must not
/// deny unknown fields, since `_csrf` is one.
///
/// Rejections: not signed in → `303` to `/signin`; a missing or wrong token →
/// `403`; a form that does not parse → `400`.
#[derive(Debug)]
pub struct CsrfForm<T> {
    pub viewer: SignedIn,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let viewer = SignedIn::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let request = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::PayloadTooLarge.into_response())?;
        let offered = offered_token(&headers, &bytes);
        if !matches(&viewer.csrf_token, offered.as_deref()) {
            return Err(refused().into_response());
        }
        let form = parse(Style::Form, &bytes).map_err(|e| {
            let mut response = e.into_response();
            *response.status_mut() = StatusCode::BAD_REQUEST;
            response
        })?;
        Ok(Self { viewer, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::CONTENT_TYPE;
    use axum::http::HeaderValue;

    #[test]
    fn only_safe_methods_skip_the_token() {
        for m in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(!changes_state(&m));
        }
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(changes_state(&m));
        }
    }

    #[test]
    fn tokens_must_match_exactly() {
        assert!(matches("abc", Some("abc")));
        assert!(!matches("abc", Some("abd")));
        assert!(!matches("abc", Some("")));
        assert!(!matches("abc", None));
        assert!(!matches("", Some("")));
    }

    #[test]
    fn forms_carry_the_token_in_a_field_and_scripts_in_a_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(
            offered_token(&headers, b"title=x&_csrf=tok").as_deref(),
            Some("tok")
        );
        assert_eq!(offered_token(&headers, b"title=x"), None);
        headers.insert(CSRF_HEADER, HeaderValue::from_static("hdr"));
        assert_eq!(offered_token(&headers, b"title=x").as_deref(), Some("hdr"));
    }
}
