//! Operators' endpoints, request metrics and graceful shutdown.

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use metrics_exporter_prometheus::PrometheusBuilder;
use sidekick_domain::MasterKey;
use sidekick_store::Store;
use sidekick_web::{router, AppState, SignupMode};
use sqlx::postgres::PgPoolOptions;
use tower::ServiceExt;

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = TestApp::spawn().await;

    let health = app.get("/healthz", None).await;
    assert_eq!(health.status(), 200);
    assert_eq!(body_text(health).await, "ok");

    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), 200);
    assert_eq!(
        body_json(ready).await,
        serde_json::json!({"database": "ok", "bus": "ok"})
    );

    let metrics = app.get("/metrics", None).await;
    assert_eq!(metrics.status(), 200);
    assert_eq!(
        metrics.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    app.cleanup().await;
}

/// Runs on the test's own thread (current-thread runtime, `oneshot` instead of a
/// socket), so a thread-local recorder sees every metric without a global one.
#[tokio::test(flavor = "current_thread")]
async fn requests_are_counted_by_matched_route_never_by_raw_path() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let _local = metrics::set_default_local_recorder(&recorder);
    let bus = connect_bus().await;
    // None of these requests touches the database.
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(200))
        .connect_lazy("postgres://postgres@127.0.0.1:1/nope")
        .expect("lazy pool");
    let state = AppState {
        store: Store::new(pool, MasterKey::generate()),
        bus: bus.clone(),
        twilio_auth_token: AUTH_TOKEN.to_string(),
        public_url: "http://127.0.0.1".to_string(),
        signup: SignupMode::Open,
        metrics: recorder.handle(),
        auth: sidekick_web::auth::AuthSettings::for_public_url("http://127.0.0.1"),
    };
    let debug = format!("{state:?}");
    assert!(
        debug.contains("<redacted>") && !debug.contains(AUTH_TOKEN),
        "{debug}"
    );
    let app = router(state);
    let secret_id = "0192f3a0-0000-7000-8000-00000000beef";
    for uri in [
        "/healthz".to_string(),
        format!("/api/messages/{secret_id}"),
        "/no/such/page".to_string(),
        "/api/no/such".to_string(),
    ] {
        let request = Request::get(uri).body(Body::empty()).expect("request");
        app.clone().oneshot(request).await.expect("response");
    }

    let response = app
        .oneshot(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
    for expected in [
        r#"sidekick_http_requests_total{method="GET",route="/healthz",status="200"} 1"#,
        r#"sidekick_http_requests_total{method="GET",route="/api/messages/{id}",status="401"} 1"#,
        r#"sidekick_http_requests_total{method="GET",route="unmatched",status="404"} 2"#,
        "sidekick_http_request_duration_seconds",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert!(!text.contains(secret_id), "raw paths never become labels");
    sidekick_bus::topology::delete(&bus)
        .await
        .expect("delete stream");
}

#[tokio::test]
async fn shutdown_lets_the_server_stop_cleanly() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    // `cleanup` fires the shutdown future and asserts `serve` returned Ok.
    app.cleanup().await;
}
