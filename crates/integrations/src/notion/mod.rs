//! Notion (API version 2022-06-28): capture notes into the page or database the
//! user chose.
//!
//! - [`client`]: [`NotionClient`] — [`NotionClient::search_pages`],
//!   [`NotionClient::create_page`], [`NotionClient::append_blocks`] — paced by a
//!   shared [`RateLimiter`](crate::RateLimiter) to Notion's three requests a
//!   second, and [`NotionError`], whose variants say what the caller should do.
//! - [`content`]: blocks, pages and parents; long text is split to fit Notion's
//!   2000-character and 100-item limits.
//! - [`id`]: [`NotionId`], parsed once from any form Notion writes.
//! - [`fake`]: [`FakeNotion`], a Notion on loopback that speaks the same wire
//!   format and enforces the same limits.

pub mod client;
pub mod content;
pub mod fake;
pub mod id;

pub use client::{
    NotionClient, NotionConfig, NotionError, Result, API_BASE_ENV, DEFAULT_API_BASE, NOTION_VERSION,
};
pub use content::{NotionBlock, NotionPage, NotionParent, PageList, PageLocation};
pub use fake::{FakeNotion, FakePage, FakeParent};
pub use id::{InvalidNotionId, NotionId};
