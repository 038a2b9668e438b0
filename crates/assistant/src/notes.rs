//! "note to notion …" for the offline engine: the note is appended to a page of
//! the user's Notion, when the notes feature is enabled — otherwise a kind
//! "connect Notion first" with a link.
//!
//! Which page: no page is chosen at connect time yet, so the page the user
//! edited most recently among those shared with Sidekick is used, and the reply
//! names it so a wrong guess is seen at once. Page titles are the workspace's
//! text ([`UntrustedText`]); neither they nor the note are logged.
//!
//! Notion has no idempotency key: a turn redone after a crash between the
//! append and the reply could append the note twice (the client itself only
//! retries when Notion certainly did nothing).

use sidekick_domain::UserId;
use sidekick_integrations::notion::{NotionBlock, NotionClient, NotionError, NotionPage};
use sidekick_integrations::oauth::{Feature, Provider};
use sidekick_integrations::UntrustedText;
use sidekick_store::{vault, Store, StoreError};

use crate::features::enabled_features;
use crate::tokens::{CallError, TokenError, TokenManager};

/// How many of the user's pages are looked at to find one to write to.
const PAGES_LOOKED_AT: u8 = 10;

/// What writing notes to Notion needs: tokens and a Notion client.
#[derive(Debug, Clone)]
pub struct NotesAccess {
    pub tokens: TokenManager,
    pub notion: NotionClient,
    /// `SIDEKICK_PUBLIC_URL`, for the "connect first" link.
    pub public_url: String,
}

impl NotesAccess {
    /// Appends `note` to the user's Notion and says where.
    #[tracing::instrument(skip_all, fields(user_id = %user), err)]
    pub async fn note(
        &self,
        store: &Store,
        user: UserId,
        note: &str,
    ) -> Result<String, StoreError> {
        if !enabled_features(store, user)
            .await?
            .contains(&Feature::Notes)
        {
            return self.connect_first(store, user).await;
        }
        let notion = &self.notion;
        let blocks = NotionBlock::paragraphs(note);
        let outcome = self
            .tokens
            .call(user, Provider::Notion, |token| {
                let blocks = &blocks;
                async move {
                    let Some(page) = target_page(notion, &token).await? else {
                        return Ok(None);
                    };
                    notion.append_blocks(&token, &page.id, blocks).await?;
                    Ok::<_, NotionError>(Some(page))
                }
            })
            .await;
        Ok(match outcome {
            Ok(Some(page)) => format!(
                "Added to your Notion page \"{}\".",
                title(&page).truncated(60).as_str()
            ),
            Ok(None) => "I can't see any Notion pages yet. Share a page with Sidekick in Notion, then send the note once more.".into(),
            Err(CallError::Token(TokenError::NeedsReconnect(_) | TokenError::NotConnected(_))) => {
                "Notion needs reconnecting first. Text \"connect notion\" when you have a minute.".into()
            }
            Err(CallError::Token(TokenError::Store(e))) => return Err(e),
            Err(CallError::Service(NotionError::Forbidden { .. } | NotionError::NotFound { .. })) => {
                "Notion didn't let me write there. Text \"connect notion\" and share a page I can add to.".into()
            }
            Err(error) => {
                tracing::warn!(%error, "notion note not saved");
                "I couldn't reach Notion just now. Try it in a few minutes.".into()
            }
        })
    }

    async fn connect_first(&self, store: &Store, user: UserId) -> Result<String, StoreError> {
        if self.tokens.apps().get(Provider::Notion).is_none() {
            return Ok("I can't save to Notion on this server yet.".into());
        }
        let code = vault::create_link(store.pool(), user, "notion", &["notes".to_string()]).await?;
        Ok(format!(
            "Connect Notion first, then I can save notes there (link works for 10 minutes): {}/c/{code}",
            self.public_url.trim_end_matches('/')
        ))
    }
}

/// The most recently edited page shared with Sidekick that is not archived.
async fn target_page(
    notion: &NotionClient,
    token: &sidekick_integrations::AccessToken,
) -> Result<Option<NotionPage>, NotionError> {
    let list = notion
        .search_pages(token, "", PAGES_LOOKED_AT, None)
        .await?;
    Ok(list.pages.into_iter().find(|p| !p.archived))
}

fn title(page: &NotionPage) -> UntrustedText {
    if page.title.as_str().trim().is_empty() {
        UntrustedText::new("Untitled")
    } else {
        page.title.clone()
    }
}
