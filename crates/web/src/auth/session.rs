//! The session behind the cookie: finding it, the [`SignedIn`] extractor for pages,
//! and signing out (here, or everywhere).

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sidekick_domain::UserId;
use sidekick_store::sessions::{self, Session};

use super::body::{style_of, Style};
use super::{cookie, csrf};
use crate::error::ApiError;
use crate::AppState;

/// Where a page sends a visitor who is not signed in.
pub const SIGNIN_PAGE: &str = "/signin";
/// Where a visitor goes who still owes the second factor.
pub const SECOND_FACTOR_PAGE: &str = "/signin/second-factor";

/// The request's session (cookie → live session), with the cookie's token.
pub(crate) async fn current(
    headers: &HeaderMap,
    state: &AppState,
) -> Result<Option<(String, Session)>, ApiError> {
    let Some(token) = cookie::session_token(headers) else {
        return Ok(None);
    };
    let session = sessions::find(state.store.pool(), token, state.auth.sessions).await?;
    Ok(session.map(|s| (token.to_string(), s)))
}

/// The signed-in viewer of an HTML page.
///
/// Put `csrf_token` into every form as the hidden field `_csrf` (see
/// [`CsrfForm`](super::CsrfForm)) and give it to page scripts for the
/// `X-CSRF-Token` header. Rejection: `303` to `/signin` when nobody is signed in,
/// to `/signin/second-factor` while the second factor is owed.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: UserId,
    pub csrf_token: String,
}

impl SignedIn {
    /// The hidden form field that carries the CSRF token, ready to put inside a
    /// `<form method="post">`. The token is URL-safe base64, so it needs no escaping.
    pub fn csrf_field(&self) -> String {
        format!(
            r#"<input type="hidden" name="{}" value="{}">"#,
            super::CSRF_FIELD,
            self.csrf_token
        )
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match current(&parts.headers, state).await {
            Err(e) => Err(e.into_response()),
            Ok(None) => Err(see_other(SIGNIN_PAGE)),
            Ok(Some((_, session))) if session.second_factor_pending => {
                Err(see_other(SECOND_FACTOR_PAGE))
            }
            Ok(Some((_, session))) => {
                tracing::Span::current().record("user_id", tracing::field::display(session.user));
                Ok(Self {
                    user: session.user,
                    csrf_token: session.csrf_token,
                })
            }
        }
    }
}

/// `303 See Other` to `location` (a path of ours).
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// The answer to a sign-out: `204` for scripts, `303` to the sign-in page for forms,
/// and the cookie cleared either way.
fn signed_out(style: Style, state: &AppState) -> Response {
    let mut response = match style {
        Style::Json => StatusCode::NO_CONTENT.into_response(),
        Style::Form => see_other(SIGNIN_PAGE),
    };
    response
        .headers_mut()
        .insert(SET_COOKIE, cookie::clear(&state.auth));
    response
}

/// The live session of a sign-out request, after checking its CSRF token.
async fn session_for_signout(
    headers: &HeaderMap,
    body: &[u8],
    state: &AppState,
) -> Result<Option<(String, Session)>, ApiError> {
    let Some((token, session)) = current(headers, state).await? else {
        return Ok(None);
    };
    let offered = csrf::offered_token(headers, body);
    if !csrf::matches(&session.csrf_token, offered.as_deref()) {
        return Err(csrf::refused());
    }
    Ok(Some((token, session)))
}

/// `POST /auth/logout`: ends this session. Without a live session there is nothing
/// to end, and the answer is the same.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let style = style_of(&headers).unwrap_or(Style::Json);
    if let Some((token, session)) = session_for_signout(&headers, &body, &state).await? {
        sessions::delete(state.store.pool(), &token).await?;
        crate::sse::notify_signed_out(&state, session.user).await;
        tracing::info!(user_id = %session.user, "signed out");
    }
    Ok(signed_out(style, &state))
}

/// `POST /auth/logout-all`: ends every session of the signed-in user, this one too.
pub(crate) async fn logout_everywhere(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let style = style_of(&headers).unwrap_or(Style::Json);
    let Some((_, session)) = session_for_signout(&headers, &body, &state).await? else {
        return Err(ApiError::Unauthorized);
    };
    let ended = sessions::delete_all(state.store.pool(), session.user).await?;
    crate::sse::notify_signed_out(&state, session.user).await;
    tracing::info!(user_id = %session.user, sessions = ended, "signed out everywhere");
    Ok(signed_out(style, &state))
}
