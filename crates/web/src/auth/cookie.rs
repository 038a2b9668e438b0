//! The session cookie: reading it from `Cookie`, writing and clearing it.

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};

use super::AuthSettings;

/// The cookie's name.
pub const SESSION_COOKIE: &str = "sidekick_session";

/// The session token of the request's `sidekick_session` cookie, if any.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// `Set-Cookie` for a new session: HttpOnly (no script reads it), SameSite=Lax (no
/// cross-site POST carries it), Secure on https. It lives as long as the session's
/// absolute limit; the idle limit is enforced on the server.
pub fn set(token: &str, settings: &AuthSettings) -> HeaderValue {
    let secure = if settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let max_age = settings.sessions.absolute.as_secs();
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| clear(settings))
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear(settings: &AuthSettings) -> HeaderValue {
    let secure = if settings.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"
    ))
    .unwrap_or(HeaderValue::from_static(
        "sidekick_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_session_token_is_found_among_other_cookies() {
        assert_eq!(
            session_token(&with_cookie("a=1; sidekick_session=tok; b=2")),
            Some("tok")
        );
        assert_eq!(session_token(&with_cookie("sidekick_session=")), None);
        assert_eq!(session_token(&with_cookie("other=tok")), None);
        assert_eq!(session_token(&HeaderMap::new()), None);
    }

    #[test]
    fn cookies_are_http_only_lax_and_secure_on_https() {
        let https = AuthSettings::for_public_url("https://x.example");
        let value = set("tok", &https);
        let text = value.to_str().unwrap();
        for part in [
            "sidekick_session=tok",
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Secure",
        ] {
            assert!(text.contains(part), "{text}");
        }
        let http = AuthSettings::for_public_url("http://127.0.0.1");
        assert!(!set("tok", &http).to_str().unwrap().contains("Secure"));
        assert!(clear(&http).to_str().unwrap().contains("Max-Age=0"));
    }
}
