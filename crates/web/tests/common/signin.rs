//! Signing in through the real routes: ask for a code, read it from the text the
//! notifier would send (the sealed `ReplyQueued` event), post it back.

use std::time::Duration;

use sidekick_domain::{ConversationEvent, DomainEventKind, OutboundKind, UserId};

use super::TestApp;

/// A signed-in browser: its cookie header value and its CSRF token.
#[derive(Debug, Clone)]
pub struct Browser {
    pub cookie: String,
    pub csrf: String,
}

/// The `name=value` of a response's `Set-Cookie` for `sidekick_session`.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sidekick_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
}

impl TestApp {
    /// A client that does not follow redirects, to see a form's `303`.
    pub fn no_redirects(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client")
    }

    pub async fn request_code(&self, phone: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth/code"))
            .json(&serde_json::json!({ "phone": phone }))
            .send()
            .await
            .expect("request")
    }

    pub async fn verify_code(&self, phone: &str, code: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth/verify"))
            .json(&serde_json::json!({ "phone": phone, "code": code }))
            .send()
            .await
            .expect("request")
    }

    /// The sign-in texts queued for `user` so far, opened, oldest first.
    pub async fn texted_codes(&self, user: UserId) -> Vec<String> {
        let key = self.store.data_key(user).await.expect("data key");
        let mut codes = Vec::new();
        for event in self.events(user).await {
            if let Ok(DomainEventKind::Conversation(ConversationEvent::ReplyQueued {
                body,
                kind: OutboundKind::System,
                ..
            })) = event.decode()
            {
                let text = key.open(&body).expect("open text");
                if text.contains("sign-in code") {
                    let code: String = text.chars().take_while(char::is_ascii_digit).collect();
                    codes.push(code);
                }
            }
        }
        codes
    }

    /// Waits for the `n`th sign-in text to `user` (queued just after the answer).
    pub async fn wait_for_code(&self, user: UserId, n: usize) -> String {
        for _ in 0..200 {
            let codes = self.texted_codes(user).await;
            if codes.len() >= n {
                return codes[n - 1].clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no sign-in code #{n} was texted");
    }

    /// Signs `user` (whose number is `phone`) in through the routes.
    pub async fn sign_in(&self, user: UserId, phone: &str) -> Browser {
        let before = self.texted_codes(user).await.len();
        assert_eq!(self.request_code(phone).await.status(), 202);
        let code = self.wait_for_code(user, before + 1).await;
        let response = self.verify_code(phone, &code).await;
        assert_eq!(response.status(), 200);
        let cookie = session_cookie(&response).expect("session cookie");
        let body: serde_json::Value = response.json().await.expect("json");
        Browser {
            cookie,
            csrf: body["csrf_token"].as_str().expect("csrf token").to_string(),
        }
    }

    /// A request with the browser's cookie (and no CSRF token).
    pub fn with_cookie(
        &self,
        method: reqwest::Method,
        path: &str,
        browser: &Browser,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("cookie", &browser.cookie)
    }
}
