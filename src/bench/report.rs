//! What a run produced: `latest.json`, the table printed at the end, and an SVG of
//! the latency percentiles over time.
//!
//! The JSON is the contract (tests and scripts read it); the table and the plot are
//! for people. Every latency is in milliseconds and summarised the same way
//! ([`Summary`]); every figure that has a baseline carries the ratio to it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::baseline::{HttpBaseline, NatsBaseline, PgBaseline};
use super::history::HistoryResult;
use super::machine::{CpuUse, Machine};
use super::pacer::PacerResult;
use super::replay::ReplayResult;
use super::stats::Summary;

#[derive(Debug, Clone, Serialize)]
pub struct RunConfig {
    pub users: usize,
    pub rate: f64,
    pub window_s: f64,
    pub messages: Option<u64>,
    pub url: Option<String>,
    pub model_latency_ms: Option<u64>,
    pub history: u64,
    pub replay: u64,
    pub reply_timeout_s: f64,
    pub server_log: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub users: usize,
    /// Webhooks posted.
    pub sent: u64,
    /// Answered 200.
    pub acked: u64,
    /// Refused or failed (`sent = acked + ack_failed`).
    pub ack_failed: u64,
    /// Replies received at the fake Twilio (`acked = replied + no_reply` when
    /// replies are awaited).
    pub replied: u64,
    pub replied_complete: u64,
    pub replied_debounced: u64,
    pub no_reply: u64,
    pub users_retired: u64,
    pub schedule_slips: u64,
    /// Consent texts drained before the load started.
    pub consents_drained: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Baseline {
    pub pg_insert_tps: f64,
    pub pg_insert_p99_ms: f64,
    pub nats_pubsub_p99_ms: f64,
    pub http_noop_p99_ms: f64,
    pub pg: PgBaseline,
    pub nats: NatsBaseline,
    pub http: HttpBaseline,
    /// The least a reply can cost with these parts (see BENCHMARKS.md): four
    /// commits, two JetStream hops and two HTTP round trips, at their medians.
    pub pipeline_floor_p50_ms: f64,
    /// The least a read-model update can lag: one JetStream hop and one commit, p99.
    pub projection_floor_p99_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub start: Option<f64>,
    pub end: Option<f64>,
    /// The server's peak resident set over its lifetime (VmHWM).
    pub peak: Option<f64>,
    pub sampled_max: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unavailable {
    pub available: bool,
    pub reason: &'static str,
}

/// A figure that was measured, or why it was not.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Measured<T> {
    Yes(T),
    No(Unavailable),
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub figure: &'static str,
    pub target: String,
    pub value: String,
    /// `None` when the figure was not measured in this run.
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TimelinePoint {
    pub t_s: f64,
    pub sent: usize,
    pub ack_p50: Option<f64>,
    pub ack_p99: Option<f64>,
    pub e2e_p50: Option<f64>,
    pub e2e_p95: Option<f64>,
    pub e2e_p99: Option<f64>,
    pub lag_p99: Option<f64>,
    pub rss_mib: Option<f64>,
    pub server_cpu_pct: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub config: RunConfig,
    pub machine: Machine,
    /// From the first text to the last reply (or acknowledgement).
    pub duration_s: f64,
    pub counts: Counts,
    pub webhook_ack_ms: Summary,
    /// Complete messages only (answered at once).
    pub e2e_reply_ms: Summary,
    /// Fragments, which wait for the rest of a burst by design.
    pub e2e_reply_debounced_ms: Summary,
    pub e2e_reply_ms_by_kind: BTreeMap<&'static str, Summary>,
    /// `e2e_reply_ms` minus the stub model's fixed delay, with `--model-latency`.
    pub pipeline_share_ms: Option<Summary>,
    pub projection_lag_ms: BTreeMap<String, Summary>,
    /// Events whose commit → visible lag was measured.
    pub projection_lag_events: usize,
    /// Live-update pings received during the load (some are for events before it).
    pub projection_lag_pings: usize,
    /// Replies per second over `duration_s` (`counts.replied / duration_s`).
    pub throughput_msgs_per_s: f64,
    /// Acknowledged webhooks per second over `duration_s`.
    pub ack_rate_msgs_per_s: f64,
    pub baseline: Baseline,
    pub ratios: BTreeMap<&'static str, Option<f64>>,
    pub rss_mib: Memory,
    pub cpu: CpuUse,
    pub errors: BTreeMap<String, u64>,
    pub errors_total: u64,
    pub sse: Measured<super::sse::SseResult>,
    pub pacer: Option<PacerResult>,
    pub history: Option<HistoryResult>,
    pub replay: Option<ReplayResult>,
    pub server_metrics: BTreeMap<String, f64>,
    pub targets: Vec<Target>,
    pub timeline: Vec<TimelinePoint>,
}

impl Report {
    /// Writes `latest.json`, a timestamped copy, and `latency.svg` under `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self)?;
        let latest = dir.join("latest.json");
        std::fs::write(&latest, &json)
            .with_context(|| format!("cannot write {}", latest.display()))?;
        let stamped = dir.join(format!(
            "run-{}.json",
            self.started_at.format("%Y%m%dT%H%M%SZ")
        ));
        std::fs::write(&stamped, &json)
            .with_context(|| format!("cannot write {}", stamped.display()))?;
        let svg = dir.join("latency.svg");
        std::fs::write(&svg, self.svg())
            .with_context(|| format!("cannot write {}", svg.display()))?;
        Ok(())
    }

    /// The table people read: figure, percentiles, baseline, ratio, target.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<34} {:>9} {:>9} {:>9} {:>9}  {:>20} {:>7}",
            "figure (ms unless stated)", "p50", "p95", "p99", "max", "baseline", "ratio"
        );
        let _ = writeln!(out, "{}", "-".repeat(104));
        let row = |out: &mut String,
                   name: &str,
                   s: &Summary,
                   base: Option<(String, f64)>,
                   ratio: Option<f64>| {
            let base = base
                .map(|(label, v)| format!("{label} {v:.2}"))
                .unwrap_or_default();
            let ratio = ratio.map(|r| format!("{r:.2}x")).unwrap_or_default();
            let _ = writeln!(
                out,
                "{:<34} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {:>20} {:>7}",
                name, s.p50, s.p95, s.p99, s.max, base, ratio
            );
        };
        let b = &self.baseline;
        row(
            &mut out,
            "webhook ack",
            &self.webhook_ack_ms,
            Some(("pg p99".into(), b.pg_insert_p99_ms)),
            self.ratios
                .get("webhook_ack_p99_vs_pg_insert_p99")
                .copied()
                .flatten(),
        );
        row(
            &mut out,
            "  vs empty axum handler",
            &b.http.noop_ms,
            Some(("noop p99".into(), b.http_noop_p99_ms)),
            self.ratios
                .get("webhook_ack_p99_vs_http_noop_p99")
                .copied()
                .flatten(),
        );
        row(
            &mut out,
            "reply at fake Twilio",
            &self.e2e_reply_ms,
            Some(("floor p50".into(), b.pipeline_floor_p50_ms)),
            self.ratios
                .get("e2e_p50_vs_pipeline_floor")
                .copied()
                .flatten(),
        );
        if let Some(share) = &self.pipeline_share_ms {
            row(
                &mut out,
                "  pipeline share (model replies)",
                share,
                None,
                None,
            );
        }
        row(
            &mut out,
            "reply, debounced fragments",
            &self.e2e_reply_debounced_ms,
            None,
            None,
        );
        for (name, lag) in &self.projection_lag_ms {
            row(
                &mut out,
                &format!("projection lag: {name}"),
                lag,
                Some(("floor p99".into(), b.projection_floor_p99_ms)),
                lag_ratio(lag, b),
            );
        }
        row(
            &mut out,
            "baseline: pg INSERT (paced)",
            &b.pg.paced_ms,
            None,
            None,
        );
        row(
            &mut out,
            "baseline: JetStream pub→sub",
            &b.nats.pubsub_ms,
            None,
            None,
        );
        if let Some(h) = &self.history {
            row(&mut out, "command, new user", &h.new_user_ms, None, None);
            row(
                &mut out,
                &format!("command, {}-event user", h.events),
                &h.long_history_ms,
                Some(("new p99".into(), h.new_user_ms.p99)),
                h.ratio_p99,
            );
        }
        if let Some(p) = &self.pacer {
            row(
                &mut out,
                &format!("pacer queue wait ({} mps)", p.max_mps),
                &p.queue_wait_ms,
                None,
                None,
            );
        }
        let _ = writeln!(out, "{}", "-".repeat(104));
        let _ = writeln!(
            out,
            "throughput {:.1} replies/s (target rate {}), pg INSERT {:.0} tps → ratio {}",
            self.throughput_msgs_per_s,
            if self.config.rate > 0.0 {
                format!("{}/s", self.config.rate)
            } else {
                "open loop".into()
            },
            b.pg_insert_tps,
            fmt_ratio(
                self.ratios
                    .get("throughput_vs_pg_insert_tps")
                    .copied()
                    .flatten()
            ),
        );
        let _ = writeln!(
            out,
            "server RSS {} MiB peak, {} at end; CPU {} s ({} cores avg); load generator {} s; postgres {} s; nats {} s; machine busy {}%",
            fmt_opt(self.rss_mib.peak), fmt_opt(self.rss_mib.end),
            fmt_opt(self.cpu.server_cpu_s), fmt_opt(self.cpu.server_cores_avg),
            fmt_opt(self.cpu.loadgen_cpu_s), fmt_opt(self.cpu.postgres_cpu_s),
            fmt_opt(self.cpu.nats_cpu_s), fmt_opt(self.cpu.system_busy_pct),
        );
        if let Some(r) = &self.replay {
            let _ = writeln!(
                out,
                "replay {} events: {:.0} ev/s; read+decode {:.0} ev/s (ratio {}); server scan {:.0} ev/s",
                r.events, r.rebuild_events_per_s, r.read_events_per_s, fmt_ratio(r.ratio_vs_read), r.server_scan_events_per_s
            );
        }
        if let Some(p) = &self.pacer {
            let _ = writeln!(
                out,
                "pacer at {} mps: {} texts, {:.2}/s held, at most {} in any second and {} in any 5 s",
                p.max_mps, p.sent, p.achieved_mps, p.max_in_any_second, p.max_in_any_5s
            );
        }
        let _ = writeln!(
            out,
            "{} sent, {} acked, {} replied, {} errors {:?}",
            self.counts.sent,
            self.counts.acked,
            self.counts.replied,
            self.errors_total,
            self.errors
        );
        match &self.sse {
            Measured::Yes(s) => {
                let _ = writeln!(
                    out,
                    "SSE: {} of {} streams open: RSS {:.1} → {:.1} MiB (+{:.1}, {:.0} KiB each), {:.1} MiB after closing",
                    s.open, s.asked, s.rss_before_mib, s.rss_open_mib, s.added_mib,
                    s.per_connection_kib, s.rss_after_close_mib
                );
            }
            Measured::No(u) => {
                let _ = writeln!(out, "SSE: not measured ({})", u.reason);
            }
        }
        let _ = writeln!(out, "targets:");
        for t in &self.targets {
            let verdict = match t.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "n/a",
            };
            let _ = writeln!(
                out,
                "  [{verdict:>6}] {}: {} (target {})",
                t.figure, t.value, t.target
            );
        }
        out
    }

    /// Percentiles over time, on a log scale: one panel, a line per series.
    pub fn svg(&self) -> String {
        let (w, h) = (960.0, 480.0);
        let (left, right, top, bottom) = (70.0, 180.0, 40.0, 50.0);
        let plot_w = w - left - right;
        let plot_h = h - top - bottom;
        type Pick = fn(&TimelinePoint) -> Option<f64>;
        let series: [(&str, &str, Pick); 6] = [
            ("ack p50", "#9ecae1", |p| p.ack_p50),
            ("ack p99", "#3182bd", |p| p.ack_p99),
            ("reply p50", "#a1d99b", |p| p.e2e_p50),
            ("reply p95", "#41ab5d", |p| p.e2e_p95),
            ("reply p99", "#006d2c", |p| p.e2e_p99),
            ("projection lag p99", "#e6550d", |p| p.lag_p99),
        ];
        let values: Vec<f64> = self
            .timeline
            .iter()
            .flat_map(|p| series.iter().filter_map(|(_, _, f)| f(p)))
            .filter(|v| *v > 0.0)
            .collect();
        let lo = values
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min)
            .max(0.01);
        let hi = values.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
        let (lo_exp, hi_exp) = (lo.log10().floor(), hi.log10().ceil());
        let t_max = self.timeline.iter().map(|p| p.t_s).fold(1.0, f64::max);
        let x = |t: f64| left + plot_w * t / t_max;
        let y = |v: f64| {
            let v = v.max(10f64.powf(lo_exp));
            top + plot_h * (1.0 - (v.log10() - lo_exp) / (hi_exp - lo_exp))
        };
        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let title = format!(
            "sidekick bench: {} users, {}, {} (ms, log scale)",
            self.config.users,
            if self.config.rate > 0.0 {
                format!("{}/s", self.config.rate)
            } else {
                "open loop".into()
            },
            self.started_at.format("%Y-%m-%d %H:%M UTC")
        );
        let _ = writeln!(
            svg,
            r#"<text x="{left}" y="22" font-size="14">{}</text>"#,
            escape(&title)
        );
        let mut e = lo_exp;
        while e <= hi_exp {
            let v = 10f64.powf(e);
            let _ = writeln!(
                svg,
                r##"<line x1="{left}" x2="{0}" y1="{1:.1}" y2="{1:.1}" stroke="#ddd"/><text x="{2}" y="{3:.1}" text-anchor="end">{4}</text>"##,
                left + plot_w,
                y(v),
                left - 6.0,
                y(v) + 4.0,
                if v >= 1.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v}")
                }
            );
            e += 1.0;
        }
        let ticks = 6;
        for i in 0..=ticks {
            let t = t_max * i as f64 / ticks as f64;
            let _ = writeln!(
                svg,
                r##"<line x1="{0:.1}" x2="{0:.1}" y1="{top}" y2="{1}" stroke="#eee"/><text x="{0:.1}" y="{2}" text-anchor="middle">{3:.0} s</text>"##,
                x(t),
                top + plot_h,
                top + plot_h + 18.0,
                t
            );
        }
        let _ = writeln!(
            svg,
            r##"<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>"##
        );
        for (i, (name, color, pick)) in series.iter().enumerate() {
            let points: Vec<String> = self
                .timeline
                .iter()
                .filter_map(|p| {
                    pick(p)
                        .filter(|v| *v > 0.0)
                        .map(|v| format!("{:.1},{:.1}", x(p.t_s), y(v)))
                })
                .collect();
            if points.len() > 1 {
                let _ = writeln!(
                    svg,
                    r#"<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{}"/>"#,
                    points.join(" ")
                );
            }
            let ly = top + 14.0 + 18.0 * i as f64;
            let lx = left + plot_w + 12.0;
            let _ = writeln!(
                svg,
                r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="3"/><text x="{}" y="{}">{name}</text>"#,
                lx + 18.0,
                lx + 24.0,
                ly + 4.0
            );
        }
        let _ = writeln!(svg, "</svg>");
        svg
    }
}

fn lag_ratio(lag: &Summary, b: &Baseline) -> Option<f64> {
    super::stats::ratio(lag.p99, b.projection_floor_p99_ms)
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.3}x"))
        .unwrap_or_else(|| "n/a".into())
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
