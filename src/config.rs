//! Configuration: environment variables (12-factor), optionally `sidekick.toml` with
//! the same keys in lower case. Secrets are redacted from `Debug`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use sidekick_domain::MasterKey;

const KEYS: &[&str] = &[
    "DATABASE_URL",
    "NATS_URL",
    "SIDEKICK_HTTP_ADDR",
    "SIDEKICK_PUBLIC_URL",
    "SIDEKICK_DATA_DIR",
    "SIDEKICK_MASTER_KEY",
    "SIDEKICK_NAMESPACE",
    "SIDEKICK_PARTITIONS",
    "SIDEKICK_SIGNUP",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER",
    "TWILIO_MESSAGING_SERVICE_SID",
    "TWILIO_API_BASE",
    "TWILIO_MAX_MPS",
    "SIDEKICK_LLM",
    "SIDEKICK_STUB_LATENCY_MS",
    "GEMINI_API_KEY",
    "GEMINI_MODEL",
    "GEMINI_API_BASE",
    "OPENAI_API_KEY",
    "OPENAI_MODEL",
    "OPENAI_API_BASE",
    "SIDEKICK_DAILY_TOKENS",
    "SIDEKICK_HOLDING_REPLY_MS",
    "SIDEKICK_MODEL_TIMEOUT_MS",
    "SIDEKICK_LOG_FORMAT",
    "SIDEKICK_SESSION_IDLE_MINUTES",
    "SIDEKICK_SESSION_MAX_DAYS",
    "SIDEKICK_SIGNIN_CODES_PER_PHONE",
    "SIDEKICK_SIGNIN_CODES_PER_ADDRESS",
    "SIDEKICK_TRUST_FORWARDED_FOR",
    "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET",
    "MICROSOFT_CLIENT_ID",
    "MICROSOFT_CLIENT_SECRET",
    "NOTION_CLIENT_ID",
    "NOTION_CLIENT_SECRET",
];

#[derive(Clone, Serialize, Deserialize)]
pub struct Config {
    pub database_url: String,
    pub nats_url: String,
    pub sidekick_http_addr: SocketAddr,
    pub sidekick_public_url: String,
    pub sidekick_data_dir: Option<PathBuf>,
    pub sidekick_master_key: Option<String>,
    pub sidekick_namespace: String,
    #[serde(deserialize_with = "number_or_text")]
    pub sidekick_partitions: u32,
    pub sidekick_signup: String,
    pub twilio_account_sid: Option<String>,
    pub twilio_auth_token: Option<String>,
    pub twilio_from_number: Option<String>,
    pub twilio_messaging_service_sid: Option<String>,
    pub twilio_api_base: String,
    #[serde(deserialize_with = "number_or_text")]
    pub twilio_max_mps: f64,
    pub sidekick_llm: Option<String>,
    /// With `SIDEKICK_LLM=stub` (load tests only): how long the stub model takes per turn.
    #[serde(deserialize_with = "number_or_text")]
    pub sidekick_stub_latency_ms: u64,
    /// Gemini (an organisation key for the deployment, not per user).
    pub gemini_api_key: Option<String>,
    pub gemini_model: String,
    pub gemini_api_base: String,
    /// Any OpenAI-compatible server; the key is optional for local ones (Ollama).
    pub openai_api_key: Option<String>,
    pub openai_model: String,
    pub openai_api_base: String,
    /// Model tokens per user per local day; 0 means no limit.
    #[serde(deserialize_with = "number_or_text")]
    pub sidekick_daily_tokens: u64,
    /// A model slower than this gets a holding reply first.
    #[serde(deserialize_with = "number_or_text")]
    pub sidekick_holding_reply_ms: u64,
    /// A model slower than this is abandoned for the offline engine.
    #[serde(deserialize_with = "number_or_text")]
    pub sidekick_model_timeout_ms: u64,
    pub sidekick_log_format: Option<String>,
    /// A web session idle longer than this ends (minutes; default 7 days).
    #[serde(deserialize_with = "number_or_text")]
    pub sidekick_session_idle_minutes: u64,
    /// A web session older than this ends however busy (days; default 30).
    #[serde(deserialize_with = "number_or_text")]
    pub sidekick_session_max_days: u64,
    /// Sign-in codes one number may ask for per 15 minutes (default 3).
    #[serde(deserialize_with = "number_or_text")]
    pub sidekick_signin_codes_per_phone: u32,
    /// Sign-in codes one client address may ask for per 15 minutes (default 20).
    #[serde(deserialize_with = "number_or_text")]
    pub sidekick_signin_codes_per_address: u32,
    /// Whether the client address is the last `X-Forwarded-For` entry: set only
    /// behind a reverse proxy that sets it (default false).
    #[serde(deserialize_with = "bool_or_text")]
    pub sidekick_trust_forwarded_for: bool,
    /// OAuth apps: a provider without a client id is shown as unavailable.
    pub google_client_id: Option<String>,
    pub google_client_secret: Option<String>,
    pub microsoft_client_id: Option<String>,
    pub microsoft_client_secret: Option<String>,
    pub notion_client_id: Option<String>,
    pub notion_client_secret: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "postgres://postgres@127.0.0.1:5432/sidekick".into(),
            nats_url: "nats://127.0.0.1:4222".into(),
            sidekick_http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            sidekick_public_url: "http://127.0.0.1:8080".into(),
            sidekick_data_dir: None,
            sidekick_master_key: None,
            sidekick_namespace: "sidekick".into(),
            sidekick_partitions: 16,
            sidekick_signup: "open".into(),
            twilio_account_sid: None,
            twilio_auth_token: None,
            twilio_from_number: None,
            twilio_messaging_service_sid: None,
            twilio_api_base: "https://api.twilio.com".into(),
            twilio_max_mps: 1.0,
            sidekick_llm: None,
            sidekick_stub_latency_ms: 0,
            gemini_api_key: None,
            gemini_model: sidekick_integrations::llm::gemini::DEFAULT_MODEL.into(),
            gemini_api_base: sidekick_integrations::llm::gemini::DEFAULT_API_BASE.into(),
            openai_api_key: None,
            openai_model: sidekick_integrations::llm::openai::DEFAULT_MODEL.into(),
            openai_api_base: sidekick_integrations::llm::openai::DEFAULT_API_BASE.into(),
            sidekick_daily_tokens: 200_000,
            sidekick_holding_reply_ms: 2_500,
            sidekick_model_timeout_ms: 10_000,
            sidekick_log_format: None,
            sidekick_session_idle_minutes: 7 * 24 * 60,
            sidekick_session_max_days: 30,
            sidekick_signin_codes_per_phone: 3,
            sidekick_signin_codes_per_address: 20,
            sidekick_trust_forwarded_for: false,
            google_client_id: None,
            google_client_secret: None,
            microsoft_client_id: None,
            microsoft_client_secret: None,
            notion_client_id: None,
            notion_client_secret: None,
        }
    }
}

/// Numbers may come from TOML (a number) or the environment (text).
fn number_or_text<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr + serde::Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<T> {
        Number(T),
        Text(String),
    }
    match Either::<T>::deserialize(d)? {
        Either::Number(n) => Ok(n),
        Either::Text(s) => s
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a number"))),
    }
}

/// Booleans may come from TOML (a boolean) or the environment (`true`/`1`/`yes`…).
fn bool_or_text<'de, D>(d: D) -> Result<bool, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Bool(bool),
        Text(String),
    }
    match Either::deserialize(d)? {
        Either::Bool(b) => Ok(b),
        Either::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(serde::de::Error::custom(format!(
                "{s:?} is not true or false"
            ))),
        },
    }
}

fn redact(v: &Option<String>) -> &'static str {
    if v.is_some() {
        "<set>"
    } else {
        "<unset>"
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("nats_url", &self.nats_url)
            .field("http_addr", &self.sidekick_http_addr)
            .field("public_url", &self.sidekick_public_url)
            .field("namespace", &self.sidekick_namespace)
            .field("partitions", &self.sidekick_partitions)
            .field("signup", &self.sidekick_signup)
            .field("master_key", &redact(&self.sidekick_master_key))
            .field("twilio_account_sid", &self.twilio_account_sid)
            .field("twilio_auth_token", &redact(&self.twilio_auth_token))
            .field("twilio_api_base", &self.twilio_api_base)
            .field("twilio_max_mps", &self.twilio_max_mps)
            .field("llm", &self.sidekick_llm)
            .field("gemini_api_key", &redact(&self.gemini_api_key))
            .field("gemini_model", &self.gemini_model)
            .field("gemini_api_base", &self.gemini_api_base)
            .field("openai_api_key", &redact(&self.openai_api_key))
            .field("openai_model", &self.openai_model)
            .field("openai_api_base", &self.openai_api_base)
            .field("daily_tokens", &self.sidekick_daily_tokens)
            .field("google_client_id", &self.google_client_id)
            .field("google_client_secret", &redact(&self.google_client_secret))
            .field("microsoft_client_id", &self.microsoft_client_id)
            .field(
                "microsoft_client_secret",
                &redact(&self.microsoft_client_secret),
            )
            .field("notion_client_id", &self.notion_client_id)
            .field("notion_client_secret", &redact(&self.notion_client_secret))
            .finish()
    }
}

/// Hides a password in a database URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Config {
    pub fn load() -> Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if Path::new("sidekick.toml").exists() {
            figment = figment.merge(Toml::file("sidekick.toml"));
        }
        // Environment values are taken as text: figment's own Env provider would read
        // "+15551230001" as a number and lose the plus.
        let env: std::collections::BTreeMap<String, String> = KEYS
            .iter()
            .filter_map(|k| {
                std::env::var(k)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(|v| (k.to_ascii_lowercase(), v))
            })
            .collect();
        let config: Config = figment.merge(Serialized::defaults(env)).extract().context(
            "configuration is invalid (check the SIDEKICK_*, TWILIO_* and DATABASE_URL variables)",
        )?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if !matches!(self.sidekick_signup.as_str(), "open" | "invite") {
            bail!(
                "SIDEKICK_SIGNUP must be 'open' or 'invite', not {:?}",
                self.sidekick_signup
            );
        }
        if !(1..=1024).contains(&self.sidekick_partitions) {
            bail!("SIDEKICK_PARTITIONS must be between 1 and 1024");
        }
        if let Some(llm) = &self.sidekick_llm {
            if !matches!(llm.as_str(), "offline" | "gemini" | "openai" | "stub") {
                bail!("SIDEKICK_LLM must be offline, gemini or openai, not {llm:?}");
            }
        }
        if self.sidekick_model_timeout_ms == 0 {
            bail!("SIDEKICK_MODEL_TIMEOUT_MS must be more than 0");
        }
        if self.twilio_max_mps < 0.0 {
            bail!("TWILIO_MAX_MPS must be 0 (no pacing) or more");
        }
        sidekick_bus::Namespace::parse(&self.sidekick_namespace).map_err(anyhow::Error::msg)?;
        if self.sidekick_session_idle_minutes == 0 || self.sidekick_session_max_days == 0 {
            bail!("SIDEKICK_SESSION_IDLE_MINUTES and SIDEKICK_SESSION_MAX_DAYS must be at least 1");
        }
        if self.sidekick_signin_codes_per_phone == 0 || self.sidekick_signin_codes_per_address == 0
        {
            bail!("SIDEKICK_SIGNIN_CODES_PER_PHONE and SIDEKICK_SIGNIN_CODES_PER_ADDRESS must be at least 1");
        }
        Ok(())
    }

    /// Web sign-in settings: the defaults for the public URL, with the configured
    /// session lifetimes and rate limits.
    pub fn auth_settings(&self) -> sidekick_web::auth::AuthSettings {
        use std::time::Duration;
        let mut auth = sidekick_web::auth::AuthSettings::for_public_url(&self.public_url());
        auth.sessions.idle = Duration::from_secs(self.sidekick_session_idle_minutes * 60);
        auth.sessions.absolute = Duration::from_secs(self.sidekick_session_max_days * 24 * 3600);
        auth.codes_per_phone.limit = self.sidekick_signin_codes_per_phone;
        auth.codes_per_address.limit = self.sidekick_signin_codes_per_address;
        auth.trust_forwarded_for = self.sidekick_trust_forwarded_for;
        auth
    }

    /// Which conversation engine answers (INTERFACE.md): `SIDEKICK_LLM` when set,
    /// else `gemini` when a Gemini key is set, else `offline`.
    pub fn llm(&self) -> &str {
        match self.sidekick_llm.as_deref() {
            Some(llm) => llm,
            None if self.gemini_api_key.is_some() => "gemini",
            None => "offline",
        }
    }
    /// An OAuth setting by its variable name: client ids and secrets from the
    /// configuration (environment or `sidekick.toml`), endpoint overrides
    /// (`<PROVIDER>_AUTH_URL`, `_TOKEN_URL`, `_REVOKE_URL`: test knobs) from the
    /// environment.
    pub fn oauth_setting(&self, key: &str) -> Option<String> {
        let field = match key {
            "GOOGLE_CLIENT_ID" => &self.google_client_id,
            "GOOGLE_CLIENT_SECRET" => &self.google_client_secret,
            "MICROSOFT_CLIENT_ID" => &self.microsoft_client_id,
            "MICROSOFT_CLIENT_SECRET" => &self.microsoft_client_secret,
            "NOTION_CLIENT_ID" => &self.notion_client_id,
            "NOTION_CLIENT_SECRET" => &self.notion_client_secret,
            _ => return std::env::var(key).ok(),
        };
        field.clone()
    }

    pub fn public_url(&self) -> String {
        self.sidekick_public_url.trim_end_matches('/').to_string()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.sidekick_data_dir
            .clone()
            .or_else(|| dirs::data_dir().map(|d| d.join("sidekick")))
            .unwrap_or_else(|| PathBuf::from(".sidekick"))
    }

    /// The master key from the environment, else the development key in the data
    /// directory (generated on first use, with a warning).
    pub fn master_key(&self) -> Result<MasterKey> {
        if let Some(k) = &self.sidekick_master_key {
            return MasterKey::from_base64(k)
                .map_err(|_| anyhow::anyhow!("SIDEKICK_MASTER_KEY must be 32 bytes, base64"));
        }
        let path = self.data_dir().join("master.key");
        let text =
            read_or_create_secret(&path, || MasterKey::generate().to_base64(), "master key")?;
        MasterKey::from_base64(&text).map_err(|_| {
            anyhow::anyhow!(
                "{} is not a valid key; delete it only if you have no data",
                path.display()
            )
        })
    }

    /// The Twilio auth token, else a development token kept in the data directory.
    pub fn twilio_auth_token(&self) -> Result<(String, bool)> {
        if let Some(t) = &self.twilio_auth_token {
            return Ok((t.clone(), false));
        }
        let path = self.data_dir().join("twilio-dev-token");
        let token = read_or_create_secret(
            &path,
            || uuid::Uuid::new_v4().simple().to_string(),
            "Twilio development token",
        )?;
        Ok((token, true))
    }
}

fn read_or_create_secret(path: &Path, make: impl FnOnce() -> String, what: &str) -> Result<String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return Ok(text.trim().to_string());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let value = make();
    write_private(path, &value).with_context(|| format!("cannot write {}", path.display()))?;
    tracing::warn!(path = %path.display(), "generated a development {what}; production sets it explicitly");
    Ok(value)
}

#[cfg(unix)]
fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(value.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(
            redact_url("postgres://postgres@h/db"),
            "postgres://postgres@h/db"
        );
        let c = Config {
            twilio_auth_token: Some("tok123".into()),
            microsoft_client_secret: Some("ms-secret-1".into()),
            ..Config::default()
        };
        assert!(!format!("{c:?}").contains("tok123"));
        assert!(!format!("{c:?}").contains("ms-secret-1"));
    }

    #[test]
    fn oauth_client_settings_come_from_the_configuration() {
        let c = Config {
            notion_client_id: Some("notion-app".into()),
            ..Config::default()
        };
        assert_eq!(
            c.oauth_setting("NOTION_CLIENT_ID").as_deref(),
            Some("notion-app")
        );
        assert_eq!(c.oauth_setting("GOOGLE_CLIENT_ID"), None);
    }

    #[test]
    fn sign_in_settings_come_from_the_configuration() {
        let c = Config {
            sidekick_public_url: "https://sidekick.example/".into(),
            sidekick_session_idle_minutes: 90,
            sidekick_session_max_days: 2,
            sidekick_signin_codes_per_phone: 5,
            sidekick_trust_forwarded_for: true,
            ..Config::default()
        };
        let auth = c.auth_settings();
        assert!(auth.secure_cookies);
        assert_eq!(auth.sessions.idle.as_secs(), 90 * 60);
        assert_eq!(auth.sessions.absolute.as_secs(), 2 * 24 * 3600);
        assert_eq!(auth.codes_per_phone.limit, 5);
        assert_eq!(auth.codes_per_address.limit, 20);
        assert!(auth.trust_forwarded_for);
        assert!(!Config::default().auth_settings().secure_cookies);

        let from_env: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Serialized::defaults(std::collections::BTreeMap::from([
                ("sidekick_trust_forwarded_for", "yes"),
                ("sidekick_session_max_days", "7"),
            ])))
            .extract()
            .unwrap();
        assert!(from_env.sidekick_trust_forwarded_for);
        assert_eq!(from_env.sidekick_session_max_days, 7);
    }
}
