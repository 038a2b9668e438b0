//! YouTube Data API v3: the details of a video the user texts a link to.
//!
//! - [`client`]: [`YouTubeClient::video`] (`videos.list`, with an API key or the
//!   user's token) and [`YouTubeError`], which tells a used-up quota from a
//!   throttle from a revoked token.
//! - [`video_id`]: [`VideoId`], from every common link form.
//! - [`duration`]: ISO 8601 durations (`PT1H2M3S`).
//! - [`fake`]: [`FakeYouTube`], the same API on loopback, quota included.

pub mod client;
pub mod duration;
pub mod fake;
pub mod video_id;

pub use client::{
    LiveBroadcast, Result, VideoDetails, YouTubeAuth, YouTubeClient, YouTubeConfig, YouTubeError,
    API_BASE_ENV, DEFAULT_API_BASE,
};
pub use duration::{parse_iso8601_duration, InvalidDuration};
pub use fake::{FakeVideo, FakeYouTube};
pub use video_id::{InvalidVideoId, VideoId};
