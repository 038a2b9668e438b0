//! The integrations a model's tools reach, for real: the user's enabled features
//! from the credential vault, Microsoft Graph mail and calendar through the token
//! manager. Implements [`Outside`] for the worker.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sidekick_domain::UserId;
use sidekick_integrations::graph::NewEvent;
use sidekick_integrations::oauth::{Feature, Provider};
use sidekick_integrations::untrusted::UntrustedText;
use sidekick_store::Store;
use uuid::Uuid;

use crate::features::enabled_features;
use crate::microsoft::MicrosoftAccess;
use crate::tools::{MailItem, Outside, OutsideError};

/// How many unread important messages a triage reads.
const MAIL_LIMIT: u8 = 5;

/// [`Outside`] over the vault and Microsoft Graph. `graph` is `None` when this
/// deployment has no Microsoft app: then no Microsoft feature is ever enabled.
pub struct Connected {
    pub store: Store,
    pub graph: Option<MicrosoftAccess>,
}

impl Connected {
    fn graph(&self) -> Result<&MicrosoftAccess, OutsideError> {
        self.graph
            .as_ref()
            .ok_or_else(|| OutsideError("Microsoft is not set up on this server".into()))
    }
}

fn failed(what: &str, error: impl std::fmt::Display) -> OutsideError {
    tracing::warn!(%error, "{what} failed");
    OutsideError(format!("{what} is not reachable just now"))
}

#[async_trait]
impl Outside for Connected {
    async fn enabled(&self, user: UserId) -> Vec<Feature> {
        match enabled_features(&self.store, user).await {
            // Without a Microsoft app the Graph tools could only fail: not offered.
            Ok(features) => features
                .into_iter()
                .filter(|f| self.graph.is_some() || f.provider() != Provider::Microsoft)
                .collect(),
            Err(error) => {
                // Core tools still work; integrations wait for the vault.
                tracing::warn!(%error, "enabled features unavailable; core tools only");
                Vec::new()
            }
        }
    }

    async fn unread_mail(&self, user: UserId) -> Result<Vec<MailItem>, OutsideError> {
        let access = self.graph()?;
        let graph = &access.graph;
        let mail = access
            .tokens
            .call(user, Provider::Microsoft, |token| async move {
                graph.unread_important_mail(&token, MAIL_LIMIT).await
            })
            .await
            .map_err(|e| failed("mail", e))?;
        Ok(mail
            .into_iter()
            .map(|m| MailItem {
                from: m
                    .from_name
                    .or(m.from_address)
                    .unwrap_or_else(|| UntrustedText::new("someone")),
                subject: m.subject,
                preview: m.preview,
            })
            .collect())
    }

    async fn create_event(
        &self,
        user: UserId,
        title: &str,
        start: DateTime<Utc>,
        minutes: u32,
    ) -> Result<(), OutsideError> {
        let access = self.graph()?;
        let timezone = self
            .store
            .account(user)
            .await
            .map_err(|e| failed("account", e))?
            .timezone;
        // The same request made twice (a redone turn) books one event.
        let key = format!("{user}|{title}|{}", start.timestamp());
        let event = NewEvent {
            subject: title.to_string(),
            start,
            end: start + Duration::minutes(i64::from(minutes.max(5))),
            timezone,
            body: None,
            reminder_minutes: None,
            transaction_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes()).to_string(),
        };
        let graph = &access.graph;
        access
            .tokens
            .call(user, Provider::Microsoft, |token| {
                let event = event.clone();
                async move { graph.create_event(&token, &event).await }
            })
            .await
            .map_err(|e| failed("calendar", e))?;
        Ok(())
    }
}
