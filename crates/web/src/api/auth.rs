//! Who is calling: `Authorization: Bearer <token>` → the token's user, or the
//! `sidekick_session` cookie → the session's user (with CSRF checked).

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use sidekick_domain::UserId;
use sidekick_store::registry;

use crate::auth::{csrf, session};
use crate::error::ApiError;
use crate::AppState;

/// The authenticated user of an API request. Extracting it is the only way a
/// handler learns a user id, so every route is authenticated by construction.
///
/// Two ways in: a bearer token (scripts, `sidekick users token`), which needs
/// nothing else; or the session cookie (the dashboard), which on `POST`, `PUT`,
/// `PATCH` and `DELETE` must come with the session's token in `X-CSRF-Token`
/// (`403` otherwise). A bearer header that is present decides alone: a bad token is
/// `401` even when a cookie is sent too. A session still waiting for its second
/// factor signs nobody in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller(pub UserId);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = if parts.headers.contains_key(AUTHORIZATION) {
            let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized)?;
            registry::user_for_token(state.store.pool(), token)
                .await?
                .ok_or(ApiError::Unauthorized)?
        } else {
            let (_, session) = session::current(&parts.headers, state)
                .await?
                .filter(|(_, s)| !s.second_factor_pending)
                .ok_or(ApiError::Unauthorized)?;
            if csrf::changes_state(&parts.method)
                && !csrf::matches(&session.csrf_token, csrf::header_token(&parts.headers))
            {
                return Err(csrf::refused());
            }
            session.user
        };
        tracing::Span::current().record("user_id", tracing::field::display(user));
        Ok(Self(user))
    }
}

/// The token of a `Bearer` authorization header; the scheme is case-insensitive
/// (RFC 7235), the token is not.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn bearer_tokens_are_read_from_the_authorization_header() {
        assert_eq!(
            bearer_token(&with_authorization("Bearer sk_abc")),
            Some("sk_abc")
        );
        assert_eq!(
            bearer_token(&with_authorization("bearer  sk_abc ")),
            Some("sk_abc")
        );
        assert_eq!(
            bearer_token(&with_authorization("Basic dXNlcjpwYXNz")),
            None
        );
        assert_eq!(bearer_token(&with_authorization("Bearer ")), None);
        assert_eq!(bearer_token(&with_authorization("sk_abc")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }
}
