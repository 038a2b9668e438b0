//! What Sidekick writes to Notion and reads back: blocks, pages, parents.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::id::NotionId;
use crate::untrusted::UntrustedText;

/// Notion refuses a rich-text `content` longer than this (in UTF-16 units, as
/// its JavaScript validation counts).
pub(crate) const MAX_TEXT: usize = 2000;
/// …and an array of more than this many rich-text objects or child blocks.
pub(crate) const MAX_ITEMS: usize = 100;

/// One block of page content. Text of any length is accepted: it is split into
/// as many rich-text pieces (and, past Notion's limits, as many blocks) as
/// needed, which Notion shows as one run of text.
#[derive(Clone, PartialEq, Eq)]
pub enum NotionBlock {
    Paragraph(String),
    /// A second-level heading.
    Heading(String),
    Bullet(String),
    /// A checkbox item: the steps of a task.
    ToDo {
        text: String,
        checked: bool,
    },
}

impl NotionBlock {
    /// A paragraph block per paragraph of `text` (paragraphs separated by blank
    /// lines); empty paragraphs are dropped.
    pub fn paragraphs(text: &str) -> Vec<NotionBlock> {
        text.split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| NotionBlock::Paragraph(p.to_string()))
            .collect()
    }

    fn text(&self) -> &str {
        match self {
            Self::Paragraph(text) | Self::Heading(text) | Self::Bullet(text) => text,
            Self::ToDo { text, .. } => text,
        }
    }

    /// The block as Notion's JSON, split into several when its text needs more
    /// than [`MAX_ITEMS`] rich-text pieces.
    pub(crate) fn to_json(&self) -> Vec<Value> {
        let pieces = rich_text(self.text());
        let groups: Vec<&[Value]> = if pieces.is_empty() {
            vec![&[]]
        } else {
            pieces.chunks(MAX_ITEMS).collect()
        };
        groups
            .into_iter()
            .map(|group| match self {
                Self::Paragraph(_) => {
                    json!({"object": "block", "type": "paragraph", "paragraph": {"rich_text": group}})
                }
                Self::Heading(_) => {
                    json!({"object": "block", "type": "heading_2", "heading_2": {"rich_text": group}})
                }
                Self::Bullet(_) => json!({
                    "object": "block",
                    "type": "bulleted_list_item",
                    "bulleted_list_item": {"rich_text": group}
                }),
                Self::ToDo { checked, .. } => json!({
                    "object": "block",
                    "type": "to_do",
                    "to_do": {"rich_text": group, "checked": checked}
                }),
            })
            .collect()
    }
}

impl std::fmt::Debug for NotionBlock {
    // The text is the user's note; it stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::Paragraph(_) => "Paragraph",
            Self::Heading(_) => "Heading",
            Self::Bullet(_) => "Bullet",
            Self::ToDo { .. } => "ToDo",
        };
        write!(f, "{kind}({} chars)", self.text().chars().count())
    }
}

/// Every block as JSON, in order.
pub(crate) fn blocks_json(blocks: &[NotionBlock]) -> Vec<Value> {
    blocks.iter().flat_map(NotionBlock::to_json).collect()
}

/// `text` as plain rich-text objects of at most [`MAX_TEXT`] UTF-16 units each.
pub(crate) fn rich_text(text: &str) -> Vec<Value> {
    let mut pieces = Vec::new();
    let mut piece = String::new();
    let mut units = 0;
    for c in text.chars() {
        if units + c.len_utf16() > MAX_TEXT {
            pieces.push(std::mem::take(&mut piece));
            units = 0;
        }
        piece.push(c);
        units += c.len_utf16();
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    pieces
        .into_iter()
        .map(|content| json!({"type": "text", "text": {"content": content}}))
        .collect()
}

/// Where a new page goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotionParent {
    /// A row in a database; its title property is set through the id `title`,
    /// which every database's title property has, whatever it is named.
    Database(NotionId),
    /// A sub-page of a page.
    Page(NotionId),
}

impl NotionParent {
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Self::Database(id) => json!({"database_id": id.as_str()}),
            Self::Page(id) => json!({"page_id": id.as_str()}),
        }
    }
}

/// Where an existing page lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageLocation {
    Database(NotionId),
    Page(NotionId),
    /// At the top of the workspace.
    Workspace,
    /// Inside another block (a column, a toggle).
    Block(NotionId),
}

/// A page, as search and create answer with it. The title is whatever the
/// workspace holds — possibly shared by others — so it is [`UntrustedText`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotionPage {
    pub id: NotionId,
    pub title: UntrustedText,
    /// Opens the page in Notion.
    pub url: String,
    pub location: PageLocation,
    pub last_edited: Option<DateTime<Utc>>,
    pub archived: bool,
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageList {
    pub pages: Vec<NotionPage>,
    /// Pass back to get the next page; `None` when there is none.
    pub next_cursor: Option<String>,
}

/// The fields of Notion's page object this client reads.
#[derive(Debug, Deserialize)]
pub(crate) struct PageObject {
    pub object: String,
    pub id: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub parent: Option<ParentObject>,
    #[serde(default)]
    pub last_edited_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub properties: serde_json::Map<String, Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ParentObject {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub database_id: Option<String>,
    #[serde(default)]
    pub page_id: Option<String>,
    #[serde(default)]
    pub block_id: Option<String>,
}

impl PageObject {
    pub(crate) fn into_page(self) -> Result<NotionPage, String> {
        if self.object != "page" {
            return Err(format!("expected a page object, got {:?}", self.object));
        }
        let id = NotionId::parse(&self.id).map_err(|e| e.to_string())?;
        let location = match self.parent {
            Some(parent) => {
                let parse = |v: Option<String>| {
                    v.as_deref()
                        .map(NotionId::parse)
                        .transpose()
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("a {} parent without its id", parent.kind))
                };
                match parent.kind.as_str() {
                    "database_id" => PageLocation::Database(parse(parent.database_id.clone())?),
                    "page_id" => PageLocation::Page(parse(parent.page_id.clone())?),
                    "block_id" => PageLocation::Block(parse(parent.block_id.clone())?),
                    _ => PageLocation::Workspace,
                }
            }
            None => PageLocation::Workspace,
        };
        Ok(NotionPage {
            title: UntrustedText::new(title_of(&self.properties)),
            url: self.url.unwrap_or_default(),
            id,
            location,
            last_edited: self.last_edited_time,
            archived: self.archived,
        })
    }
}

/// The plain text of the page's title property, whatever it is named.
fn title_of(properties: &serde_json::Map<String, Value>) -> String {
    properties
        .values()
        .find(|p| p.get("type").and_then(Value::as_str) == Some("title"))
        .and_then(|p| p.get("title"))
        .and_then(Value::as_array)
        .map(|pieces| {
            pieces
                .iter()
                .filter_map(|piece| piece.get("plain_text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

/// Notion's list object, for block children.
#[derive(Debug, Deserialize)]
pub(crate) struct ListObject<T> {
    pub results: Vec<T>,
    #[serde(default)]
    pub next_cursor: Option<String>,
    #[serde(default)]
    pub has_more: bool,
}

/// The one field of a block object this client reads.
#[derive(Debug, Deserialize)]
pub(crate) struct BlockObject {
    pub id: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn long_text_is_split_within_notions_limits() {
        let text = "a".repeat(4500);
        let pieces = rich_text(&text);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[0]["text"]["content"].as_str().unwrap().len(), 2000);
        assert_eq!(pieces[2]["text"]["content"].as_str().unwrap().len(), 500);

        // Emoji are two UTF-16 units each.
        let emoji = rich_text(&"😀".repeat(1001));
        assert_eq!(emoji.len(), 2);
        assert_eq!(
            emoji[0]["text"]["content"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            1000
        );

        let huge = NotionBlock::Bullet("b".repeat(MAX_TEXT * MAX_ITEMS + 1)).to_json();
        assert_eq!(huge.len(), 2, "past 100 pieces, a second block");
        assert_eq!(
            huge[1]["bulleted_list_item"]["rich_text"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn blocks_take_notions_shapes() {
        let blocks = blocks_json(&[
            NotionBlock::Heading("Steps".into()),
            NotionBlock::ToDo {
                text: "Empty the shelf".into(),
                checked: false,
            },
            NotionBlock::Paragraph(String::new()),
        ]);
        assert_eq!(blocks[0]["type"], "heading_2");
        assert_eq!(
            blocks[0]["heading_2"]["rich_text"][0]["text"]["content"],
            "Steps"
        );
        assert_eq!(blocks[1]["to_do"]["checked"], false);
        assert_eq!(blocks[2]["paragraph"]["rich_text"], json!([]));
    }

    #[test]
    fn paragraphs_split_on_blank_lines() {
        let blocks = NotionBlock::paragraphs("first\nstill first\n\n\n\nsecond\n\n  ");
        assert_eq!(
            blocks,
            vec![
                NotionBlock::Paragraph("first\nstill first".into()),
                NotionBlock::Paragraph("second".into())
            ]
        );
        assert_eq!(format!("{:?}", blocks[1]), "Paragraph(6 chars)");
    }
}
