//! `sidekick text`: sends a correctly signed inbound SMS to the running server, as
//! Twilio would, then prints the reply when it arrives.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures::StreamExt;
use sidekick_domain::{MessageSid, SealedText};
use sidekick_integrations::twilio::signature;
use sidekick_store::{registry, sync, Store};

use crate::config::Config;
use crate::serve::connect_db;
use crate::users::parse_phone;

/// The `<Message>` texts of a TwiML answer (the server replies inline to unknown numbers).
fn twiml_messages(xml: &str) -> Vec<String> {
    xml.split("<Message>")
        .skip(1)
        .filter_map(|part| part.split("</Message>").next())
        .map(|m| {
            m.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

pub async fn run(config: &Config, from: &str, message: &str, timeout: u64) -> Result<()> {
    let phone = parse_phone(from)?;
    let (token, _) = config.twilio_auth_token()?;
    let url = format!("{}/webhooks/twilio/sms", config.public_url());
    let params = vec![
        (
            "AccountSid".to_string(),
            config
                .twilio_account_sid
                .clone()
                .unwrap_or_else(|| "AC00000000000000000000000000000000".into()),
        ),
        ("Body".to_string(), message.to_string()),
        ("From".to_string(), phone.to_string()),
        ("MessageSid".to_string(), MessageSid::generate().to_string()),
        ("NumMedia".to_string(), "0".to_string()),
        (
            "To".to_string(),
            config
                .twilio_from_number
                .clone()
                .unwrap_or_else(|| "+15550000000".into()),
        ),
    ];
    let signature = signature::compute(&token, &url, &params);
    let sent_at = chrono::Utc::now();
    let response = reqwest::Client::new()
        .post(&url)
        .header("X-Twilio-Signature", signature)
        .form(&params)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("cannot reach Sidekick at {url}: is `sidekick serve` running?"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("the webhook answered {status}: {}", body.trim());
    }
    let inline = twiml_messages(&body);
    if !inline.is_empty() {
        for m in inline {
            println!("{m}");
        }
        return Ok(());
    }

    let pool = connect_db(config).await?;
    let Some(user) = registry::user_by_phone(&pool, &phone).await? else {
        eprintln!("(no reply: this number has no account)");
        return Ok(());
    };
    let store = Store::new(pool.clone(), config.master_key()?);
    let key = store.data_key(user).await?;
    // Wake on the user's live-update subject; poll slowly as a fallback.
    let bus = crate::serve::connect_bus(config).await.ok();
    let mut updates = match &bus {
        Some(b) => b.subscribe_ui(user).await.ok(),
        None => None,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        let replies = sync::replies_after(&pool, user, sent_at).await?;
        let settled: Vec<_> = replies
            .iter()
            .filter(|r| !matches!(r.status.as_str(), "queued" | "sending"))
            .collect();
        if !settled.is_empty() {
            for r in settled {
                let text = SealedText::from_stored(r.body_sealed.clone())
                    .ok()
                    .and_then(|s| key.open(&s).ok());
                println!("{}", text.unwrap_or_else(|| "(unreadable)".into()));
            }
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "no reply within {timeout} s (is every role running? check `sidekick serve` logs)"
            );
        }
        let wait = Duration::from_millis(250);
        match updates.as_mut() {
            Some(sub) => {
                let _ = tokio::time::timeout(wait, sub.next()).await;
            }
            None => tokio::time::sleep(wait).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_twiml_messages_are_read_back() {
        let xml =
            r#"<?xml version="1.0"?><Response><Message>Text START &amp; go</Message></Response>"#;
        assert_eq!(twiml_messages(xml), vec!["Text START & go".to_string()]);
        assert!(twiml_messages("<Response/>").is_empty());
    }
}
