//! What the sign-in routes read: a JSON or form body, and the client's address.

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::AppState;

/// How the request was sent, and so how to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A script: JSON answers with statuses.
    Json,
    /// An HTML form: `303` redirects the page can follow.
    Form,
}

/// A body of `T` as JSON or as an HTML form, with which it was.
#[derive(Debug)]
pub struct AuthBody<T> {
    pub style: Style,
    pub value: T,
}

/// Which style a request's `Content-Type` asks for, if it is one we read.
pub fn style_of(headers: &HeaderMap) -> Option<Style> {
    let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Some(Style::Json),
        "application/x-www-form-urlencoded" => Some(Style::Form),
        _ => None,
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for AuthBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let style = style_of(request.headers()).ok_or(ApiError::UnsupportedMediaType)?;
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        let value = parse(style, &bytes)?;
        Ok(Self { style, value })
    }
}

/// Parses `bytes` in `style`; the error names what is missing, never what was sent.
pub fn parse<T: DeserializeOwned>(style: Style, bytes: &[u8]) -> Result<T, ApiError> {
    match style {
        Style::Json => serde_json::from_slice(bytes)
            .map_err(|_| ApiError::BadRequest("the body is not the JSON object expected".into())),
        Style::Form => serde_urlencoded::from_bytes(bytes)
            .map_err(|_| ApiError::BadRequest("the form is missing a field".into())),
    }
}

/// The address a request came from: the socket's peer, or the last
/// `X-Forwarded-For` entry when the deployment says a proxy sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.auth.trust_forwarded_for {
            // The proxy appends the address it saw: only the last entry is its word.
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok());
            if forwarded.is_some() {
                return Ok(Self(forwarded));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Self(peer))
    }
}

impl ClientAddr {
    /// The rate-limit bucket of this address for `purpose` (fingerprinted: no
    /// plaintext address is stored). IPv6 clients are grouped by their /64, which is
    /// what one household or machine usually holds.
    pub fn bucket(&self, state: &AppState, purpose: &str) -> String {
        let address = match self.0 {
            Some(IpAddr::V6(v6)) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
            Some(IpAddr::V4(v4)) => v4.to_string(),
            None => "unknown".to_string(),
        };
        let fingerprint = state
            .store
            .master_key()
            .fingerprint(&format!("sidekick/address/{address}"));
        format!("{purpose}:{fingerprint}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_and_forms_are_told_apart_by_content_type() {
        let mut headers = HeaderMap::new();
        assert_eq!(style_of(&headers), None);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(style_of(&headers), Some(Style::Json));
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("Application/X-WWW-Form-Urlencoded"),
        );
        assert_eq!(style_of(&headers), Some(Style::Form));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(style_of(&headers), None);
    }
}
