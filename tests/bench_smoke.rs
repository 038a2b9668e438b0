//! A small `sidekick bench` through the real binary: every phase runs (baselines,
//! load, pacer, history, replay), `latest.json` has every key the issue names, its
//! numbers agree with each other, and nothing the run created is left behind.
//! No wall-clock thresholds: this machine is shared, and the figures are the
//! benchmark's business, not the test's.

use std::process::Command;

use serde_json::Value;

fn summary_is_consistent(name: &str, s: &Value) {
    let get = |k: &str| {
        s[k].as_f64()
            .unwrap_or_else(|| panic!("{name}.{k} missing or not a number: {s}"))
    };
    let (p50, p95, p99, max) = (get("p50"), get("p95"), get("p99"), get("max"));
    assert!(
        p50 <= p95 && p95 <= p99 && p99 <= max,
        "{name}: percentiles out of order: {s}"
    );
    assert!(s["count"].as_u64().is_some(), "{name}.count: {s}");
    if s["count"].as_u64() != Some(0) {
        assert!(p50 >= 0.0, "{name}: negative latency {s}");
    }
}

fn number(v: &Value, path: &str) -> f64 {
    path.split('.')
        .fold(v, |v, k| &v[k])
        .as_f64()
        .unwrap_or_else(|| panic!("{path} missing or not a number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_bench_reports_every_figure_consistently() {
    let out = tempdir();
    let status = Command::new(env!("CARGO_BIN_EXE_sidekick"))
        .args([
            "bench",
            "--users",
            "20",
            "--rate",
            "40",
            "--duration",
            "3s",
            "--baseline-duration",
            "1s",
            "--pacer-mps",
            "10",
            "--pacer-users",
            "10",
            "--history",
            "1000",
            "--replay",
            "3000",
            "--reply-timeout",
            "20s",
            "--out",
        ])
        .arg(&out)
        .env("RUST_LOG", "warn")
        .status()
        .expect("the sidekick binary runs");
    assert!(status.success(), "sidekick bench failed: {status}");

    let text = std::fs::read_to_string(out.join("latest.json")).expect("latest.json written");
    let r: Value = serde_json::from_str(&text).expect("latest.json is JSON");

    // Every key the issue names.
    for key in [
        "webhook_ack_ms",
        "e2e_reply_ms",
        "projection_lag_ms",
        "throughput_msgs_per_s",
        "baseline",
        "ratios",
        "rss_mib",
        "errors",
        "machine",
        "sse",
        "pacer",
        "history",
        "replay",
        "counts",
        "timeline",
    ] {
        assert!(!r[key].is_null(), "latest.json has no {key:?}");
    }
    for key in [
        "pg_insert_tps",
        "pg_insert_p99_ms",
        "nats_pubsub_p99_ms",
        "http_noop_p99_ms",
    ] {
        assert!(
            number(&r, &format!("baseline.{key}")) > 0.0,
            "baseline.{key}"
        );
    }
    assert!(number(&r, "machine.cores") >= 1.0);
    assert!(r["machine"]["postgres"].is_string() && r["machine"]["nats_server"].is_string());
    // Every simulated user held a live-update stream open; the memory figures add up.
    let sse = &r["sse"];
    assert_eq!(sse["available"], true, "{sse}");
    assert_eq!(sse["asked"], 20, "{sse}");
    assert_eq!(sse["open"], 20, "every stream should open: {sse}");
    let (before, open) = (
        number(&r, "sse.rss_before_mib"),
        number(&r, "sse.rss_open_mib"),
    );
    assert!(before > 0.0 && open > 0.0, "{sse}");
    assert!(
        (number(&r, "sse.added_mib") - (open - before).max(0.0)).abs() < 0.01,
        "{sse}"
    );

    // Percentiles in order everywhere.
    summary_is_consistent("webhook_ack_ms", &r["webhook_ack_ms"]);
    summary_is_consistent("e2e_reply_ms", &r["e2e_reply_ms"]);
    let lags = r["projection_lag_ms"].as_object().expect("per projector");
    assert!(
        lags.contains_key("sync"),
        "the sync projector's lag: {lags:?}"
    );
    for (name, s) in lags {
        summary_is_consistent(name, s);
        assert!(s["count"].as_u64() > Some(0), "{name} measured nothing");
    }
    summary_is_consistent("pg paced", &r["baseline"]["pg"]["paced_ms"]);
    summary_is_consistent("nats", &r["baseline"]["nats"]["pubsub_ms"]);
    summary_is_consistent("http noop", &r["baseline"]["http"]["noop_ms"]);
    summary_is_consistent("history new", &r["history"]["new_user_ms"]);
    summary_is_consistent("history long", &r["history"]["long_history_ms"]);
    summary_is_consistent("pacer wait", &r["pacer"]["queue_wait_ms"]);

    // Counts add up.
    let c = &r["counts"];
    let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("counts.{k}"));
    assert!(n("sent") > 0);
    assert_eq!(n("sent"), n("acked") + n("ack_failed"));
    assert_eq!(n("acked"), n("replied") + n("no_reply"));
    assert_eq!(n("replied"), n("replied_complete") + n("replied_debounced"));
    assert_eq!(
        n("consents_drained"),
        20,
        "every consent text drained first"
    );
    assert_eq!(r["webhook_ack_ms"]["count"].as_u64(), Some(n("acked")));
    assert_eq!(
        r["e2e_reply_ms"]["count"].as_u64(),
        Some(n("replied_complete"))
    );
    let errors: u64 = r["errors"]
        .as_object()
        .expect("errors by kind")
        .values()
        .map(|v| v.as_u64().unwrap_or(0))
        .sum();
    assert_eq!(errors, r["errors_total"].as_u64().unwrap_or(u64::MAX));
    assert_eq!(errors, n("ack_failed") + n("no_reply"));
    let timeline_sent: u64 = r["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|p| p["sent"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        timeline_sent,
        n("acked"),
        "the timeline covers every message"
    );

    // Throughput is what was replied over how long it took.
    let duration = number(&r, "duration_s");
    let throughput = number(&r, "throughput_msgs_per_s");
    let expected = n("replied") as f64 / duration;
    assert!(
        (throughput - expected).abs() <= 0.01 * expected.max(1.0),
        "throughput {throughput} vs {} replies / {duration} s",
        n("replied")
    );

    // The phases ran on what they were asked for.
    assert_eq!(number(&r, "history.events"), 1000.0);
    assert_eq!(number(&r, "replay.events"), 3000.0);
    assert!(number(&r, "replay.rebuild_events_per_s") > 0.0);
    assert_eq!(number(&r, "pacer.sent"), 10.0);
    assert!(r["ratios"]["webhook_ack_p99_vs_pg_insert_p99"].is_number());
    assert!(number(&r, "rss_mib.peak") > 0.0);

    // People's outputs exist.
    let svg = std::fs::read_to_string(out.join("latency.svg")).expect("latency.svg written");
    assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{svg}");

    // Nothing left behind: the run's databases and streams are gone.
    let tag = std::fs::read_dir(&out)
        .expect("out dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.strip_prefix("server-")?
                .strip_suffix(".log")
                .map(str::to_string)
        })
        .min_by_key(|t| t.len())
        .expect("a server log names the run");
    let admin = format!("{}/postgres", sidekick_store::testing::server_url());
    let pool = sqlx::PgPool::connect(&admin).await.expect("PostgreSQL");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname LIKE $1")
        .bind(format!("sk_bench_{tag}%"))
        .fetch_one(&pool)
        .await
        .expect("query");
    assert_eq!(left, 0, "databases of run {tag} were left behind");
    pool.close().await;
    let nats = async_nats::connect("nats://127.0.0.1:4222")
        .await
        .expect("NATS");
    let js = async_nats::jetstream::new(nats);
    for stream in [
        format!("BENCH{}_EVENTS", tag.to_uppercase()),
        format!("BENCH{}P_EVENTS", tag.to_uppercase()),
        format!("BENCH{}_BASELINE", tag.to_uppercase()),
    ] {
        assert!(
            js.get_stream(&stream).await.is_err(),
            "stream {stream} was left behind"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sidekick-bench-smoke-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
