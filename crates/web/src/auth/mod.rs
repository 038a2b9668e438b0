//! Signing in on the web: a code texted to the user's number, a server-side session
//! in a cookie, CSRF protection for everything the cookie can change, and an
//! optional second factor.
//!
//! # Routes
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /auth/code` | `phone` | `202 {"sent":true,"expires_in"}` whether or not the number has an account |
//! | `POST /auth/verify` | `phone`, `code` | `200 {"signed_in","second_factor_required","csrf_token"}` and the cookie |
//! | `POST /auth/second-factor` | `code` (authenticator or recovery code) | `200 {"signed_in":true,"csrf_token"}` and a fresh cookie |
//! | `POST /auth/logout` | (`_csrf`) | `204`; the session ends |
//! | `POST /auth/logout-all` | (`_csrf`) | `204`; every session of the user ends |
//!
//! Bodies are JSON or HTML forms (`application/x-www-form-urlencoded`). JSON gets
//! the JSON answers above and the API's error shape (`401` with `error.code`
//! `wrong_code`, `code_expired`, `too_many_attempts` or `no_code`; `429` with
//! `Retry-After`). A form gets `303 See Other`: to `/` when signed in, to
//! `/signin/second-factor` when the second factor is owed, and back to
//! `/signin?error=<code>` (plus `&step=code&phone=…` after a code was sent, and
//! `&retry_after=<seconds>` when rate limited) otherwise, for the sign-in page to
//! explain.
//!
//! # For page handlers
//!
//! - [`SignedIn`]: the signed-in viewer of an HTML page, with the session's CSRF
//!   token to put in forms as `_csrf`; not signed in → `303` to `/signin`.
//! - [`CsrfForm`]: a form post from a signed-in viewer whose `_csrf` matches.
//! - The JSON API's `Caller` accepts the cookie too, and then wants the token in an
//!   `X-CSRF-Token` header on every `POST`, `PUT`, `PATCH` and `DELETE`
//!   (`GET /api/me` tells page scripts the token as `csrf_token`).

mod body;
pub(crate) mod cookie;
pub(crate) mod csrf;
pub(crate) mod second_factor;
pub(crate) mod session;
mod signin;
pub mod totp;

use std::time::Duration;

use axum::routing::post;
use axum::Router;
use sidekick_store::sessions::Lifetime;
use sidekick_store::signin::Limit;

use crate::AppState;

pub use csrf::{CsrfForm, CSRF_FIELD, CSRF_HEADER};
pub use session::SignedIn;

/// How sign-in behaves. [`AuthSettings::for_public_url`] gives the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// How long a texted code works (10 minutes).
    pub code_ttl: Duration,
    /// Guesses per code (5); then a new code is needed.
    pub code_attempts: u32,
    /// Codes one number may ask for per window (`SIDEKICK_SIGNIN_CODES_PER_PHONE`, 3 per 15 minutes).
    pub codes_per_phone: Limit,
    /// Codes one client address may ask for per window, across numbers
    /// (`SIDEKICK_SIGNIN_CODES_PER_ADDRESS`, 20 per 15 minutes).
    pub codes_per_address: Limit,
    /// Code and second-factor checks one client address may make per window (60 per 15 minutes).
    pub checks_per_address: Limit,
    /// Idle and absolute session lifetimes
    /// (`SIDEKICK_SESSION_IDLE_MINUTES`, 7 days; `SIDEKICK_SESSION_MAX_DAYS`, 30).
    pub sessions: Lifetime,
    /// Whether the client address is the last entry of `X-Forwarded-For`
    /// (`SIDEKICK_TRUST_FORWARDED_FOR`): only behind a proxy that sets it.
    pub trust_forwarded_for: bool,
    /// Whether cookies are `Secure`: when `SIDEKICK_PUBLIC_URL` is https.
    pub secure_cookies: bool,
}

const FIFTEEN_MINUTES: Duration = Duration::from_secs(15 * 60);

impl AuthSettings {
    /// The defaults for a deployment reached at `public_url`.
    pub fn for_public_url(public_url: &str) -> Self {
        Self {
            code_ttl: Duration::from_secs(10 * 60),
            code_attempts: 5,
            codes_per_phone: Limit {
                limit: 3,
                window: FIFTEEN_MINUTES,
            },
            codes_per_address: Limit {
                limit: 20,
                window: FIFTEEN_MINUTES,
            },
            checks_per_address: Limit {
                limit: 60,
                window: FIFTEEN_MINUTES,
            },
            sessions: Lifetime::default(),
            trust_forwarded_for: false,
            secure_cookies: public_url
                .trim_start()
                .get(..8)
                .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")),
        }
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/code", post(signin::request_code))
        .route("/auth/verify", post(signin::verify))
        .route("/auth/second-factor", post(second_factor::verify))
        .route("/auth/logout", post(session::logout))
        .route("/auth/logout-all", post(session::logout_everywhere))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{header, Request, StatusCode};
    use axum::routing::get;
    use metrics_exporter_prometheus::PrometheusBuilder;
    use sidekick_bus::{Bus, Namespace};
    use sidekick_domain::{MasterKey, PhoneNumber, SignupChannel};
    use sidekick_store::testing::TestDb;
    use sidekick_store::{sessions, CommandMeta, Store};
    use tower::ServiceExt;

    #[derive(serde::Deserialize)]
    struct Probe {
        title: String,
    }

    async fn probe_app(db: &TestDb) -> (Router, AppState) {
        let ns = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let bus = Bus::connect("nats://127.0.0.1:4222", Namespace::parse(&ns).unwrap(), 1)
            .await
            .expect("NATS at 127.0.0.1:4222");
        let state = AppState {
            store: Store::new(db.pool.clone(), MasterKey::generate()),
            bus,
            twilio_auth_token: "t".into(),
            public_url: "http://127.0.0.1".into(),
            signup: crate::SignupMode::Open,
            metrics: PrometheusBuilder::new().build_recorder().handle(),
            auth: AuthSettings::for_public_url("http://127.0.0.1"),
            oauth: Default::default(),
        };
        let router = Router::new()
            .route(
                "/probe",
                get(|viewer: SignedIn| async move { viewer.csrf_field() }).post(
                    |posted: CsrfForm<Probe>| async move {
                        format!("{}:{}", posted.viewer.user, posted.form.title)
                    },
                ),
            )
            .with_state(state.clone());
        (router, state)
    }

    fn request(method: &str, cookie: Option<&str>, form: Option<&str>) -> Request<Body> {
        let mut builder = Request::builder().method(method).uri("/probe");
        if let Some(token) = cookie {
            builder = builder.header(header::COOKIE, format!("sidekick_session={token}"));
        }
        if form.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        builder
            .body(Body::from(form.unwrap_or_default().to_string()))
            .unwrap()
    }

    async fn text(response: axum::response::Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// The page extractors over a real session table: who is signed in, where the
    /// others are sent, and which form posts carry the session's token.
    #[tokio::test]
    async fn pages_see_the_viewer_and_forms_need_the_sessions_token() {
        let db = TestDb::new().await;
        let (app, state) = probe_app(&db).await;
        let phone = PhoneNumber::parse("+15551230041").unwrap();
        let (user, _) = state
            .store
            .register(
                &phone,
                None,
                None,
                SignupChannel::Operator,
                CommandMeta::new(),
            )
            .await
            .unwrap();
        let lifetime = state.auth.sessions;
        let session = sessions::create(&db.pool, user, false, lifetime)
            .await
            .unwrap();
        let pending = sessions::create(&db.pool, user, true, lifetime)
            .await
            .unwrap();

        let anonymous = app
            .clone()
            .oneshot(request("GET", None, None))
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
        assert_eq!(anonymous.headers()[header::LOCATION], "/signin");
        let owing = app
            .clone()
            .oneshot(request("GET", Some(&pending.token), None))
            .await
            .unwrap();
        assert_eq!(owing.headers()[header::LOCATION], "/signin/second-factor");
        let page = app
            .clone()
            .oneshot(request("GET", Some(&session.token), None))
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            text(page).await,
            format!(
                r#"<input type="hidden" name="_csrf" value="{}">"#,
                session.csrf_token
            )
        );

        let good = format!("title=Laundry&_csrf={}", session.csrf_token);
        let posted = app
            .clone()
            .oneshot(request("POST", Some(&session.token), Some(&good)))
            .await
            .unwrap();
        assert_eq!(posted.status(), StatusCode::OK);
        assert_eq!(text(posted).await, format!("{user}:Laundry"));
        let other = format!("title=Laundry&_csrf={}", pending.csrf_token);
        for form in ["title=Laundry", "title=Laundry&_csrf=", other.as_str()] {
            let refused = app
                .clone()
                .oneshot(request("POST", Some(&session.token), Some(form)))
                .await
                .unwrap();
            assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{form}");
        }
        let not_signed_in = app
            .clone()
            .oneshot(request("POST", None, Some(&good)))
            .await
            .unwrap();
        assert_eq!(not_signed_in.status(), StatusCode::SEE_OTHER);
        let malformed = format!("_csrf={}", session.csrf_token);
        let bad_form = app
            .oneshot(request("POST", Some(&session.token), Some(&malformed)))
            .await
            .unwrap();
        assert_eq!(bad_form.status(), StatusCode::BAD_REQUEST);
        db.cleanup().await;
    }

    #[test]
    fn cookies_are_secure_exactly_when_the_public_url_is_https() {
        assert!(AuthSettings::for_public_url("https://sidekick.example").secure_cookies);
        assert!(AuthSettings::for_public_url("HTTPS://sidekick.example").secure_cookies);
        assert!(!AuthSettings::for_public_url("http://127.0.0.1:8080").secure_cookies);
        assert!(!AuthSettings::for_public_url("").secure_cookies);
    }
}
