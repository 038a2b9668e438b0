//! Who is calling: `Authorization: Bearer <token>` → the token's user.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use sidekick_domain::UserId;
use sidekick_store::registry;

use crate::error::ApiError;
use crate::AppState;

/// The authenticated user of an API request. Extracting it is the only way a
/// handler learns a user id, so every route is authenticated by construction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caller(pub UserId);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let user = registry::user_for_token(state.store.pool(), token)
            .await?
            .ok_or(ApiError::Unauthorized)?;
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
