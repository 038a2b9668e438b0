//! Helpers every integration test file of this crate shares.

#![allow(dead_code, clippy::unwrap_used)] // not every test file uses every helper

use std::path::PathBuf;
use std::time::Duration;

use sidekick_integrations::{RetryPolicy, Timeouts};

/// Real retries, tiny waits.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
    }
}

/// Short enough that a stalled fake fails a test quickly, long enough for a
/// loaded CI machine to answer a normal request.
pub fn short_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        request: Duration::from_millis(1500),
    }
}

/// A committed fixture under `tests/fixtures/`.
pub fn fixture(path: &str) -> String {
    let full: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "fixtures", path]
        .iter()
        .collect();
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// A loopback address with nothing listening.
pub fn dead_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}
