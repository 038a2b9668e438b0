//! YouTube transcripts: the captions of a public video as plain text, with no
//! OAuth, for summarising into a memory or a note.
//!
//! - [`client`]: [`TranscriptClient::fetch`] (watch page → caption track →
//!   cleaned text) and [`TranscriptError`], which tells "this video has no
//!   captions" ([`TranscriptError::NoCaptions`]) from "YouTube would not give
//!   them to us" ([`TranscriptError::Withheld`]).
//! - [`player`]: the player response embedded in the watch page, and which track
//!   to read.
//! - [`captions`]: JSON3 / srv1 / srv3 caption tracks, and their cleaning.
//! - [`fake`]: [`FakeTranscripts`], the same web surface on loopback.

pub mod captions;
pub mod client;
pub mod fake;
pub mod player;

pub use captions::{clean, parse_track};
pub use client::{
    Result, Transcript, TranscriptClient, TranscriptConfig, TranscriptError, API_BASE_ENV,
    DEFAULT_BASE_URL,
};
pub use fake::{Availability, FakeCaptionedVideo, FakeTrack, FakeTranscripts};
