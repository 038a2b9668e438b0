//! Per-request spans and metrics, keyed by the matched route.
//!
//! Labels and span names use axum's [`MatchedPath`] (`/api/messages/{id}`), never the
//! raw path: raw paths carry ids, which would give every request its own time
//! series and put user data into metric labels. Requests no route matched share
//! the label `unmatched`.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::{Level, Span};

const UNMATCHED: &str = "unmatched";

fn route_of<B>(request: &axum::http::Request<B>) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_string(), |p| p.as_str().to_string())
}

/// Standard methods by name; anything else is `other`, so a client inventing
/// methods cannot create new label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts every request (`sidekick_http_requests_total{method,route,status}`) and
/// records its duration (`sidekick_http_request_duration_seconds{method,route}`).
pub(crate) async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = route_of(&request);
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "sidekick_http_requests_total",
        "method" => method,
        "route" => route.clone(),
        "status" => status
    )
    .increment(1);
    metrics::histogram!("sidekick_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

type MakeSpan = fn(&axum::http::Request<Body>) -> Span;

/// A span per request carrying its method and matched route; handlers record the
/// `user_id` once they know it. Failures are not logged here: the error types log
/// them once, with their cause (see [`crate::error`]).
pub(crate) fn trace_layer(
) -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan, (), DefaultOnResponse, (), (), ()>
{
    TraceLayer::new_for_http()
        .make_span_with(request_span as MakeSpan)
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::INFO))
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

fn request_span(request: &axum::http::Request<Body>) -> Span {
    tracing::info_span!(
        "http_request",
        method = method_label(request.method()),
        route = %route_of(request),
        user_id = tracing::field::Empty,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }

    #[test]
    fn requests_without_a_matched_route_are_unmatched() {
        let request = axum::http::Request::new(Body::empty());
        assert_eq!(route_of(&request), UNMATCHED);
    }
}
