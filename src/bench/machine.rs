//! What the benchmark ran on, and what the processes involved cost while it ran.
//!
//! Figures from a shared two-core machine mean little without the machine beside
//! them, so every report carries cores, memory, kernel and the versions of the
//! services it measured. CPU time and resident memory come straight from `/proc`
//! (Linux only; elsewhere they are reported as unavailable rather than guessed).

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_mib: Option<u64>,
    pub cpu_model: Option<String>,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub postgres: Option<String>,
    /// Durability settings the baselines and the event store share.
    pub postgres_settings: HashMap<String, String>,
    pub nats_server: Option<String>,
    pub rustc: Option<String>,
    pub sidekick: &'static str,
    pub build: &'static str,
}

impl Machine {
    /// Everything that can be read locally; the services' versions are filled in by
    /// the caller, which holds the connections.
    pub fn local() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let memory_mib = read("/proc/meminfo").and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kib| kib / 1024)
        });
        let cpu_model = read("/proc/cpuinfo").and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string())
        });
        let os = read("/etc/os-release").and_then(|o| {
            o.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        });
        let kernel = read("/proc/sys/kernel/osrelease").map(|k| k.trim().to_string());
        let rustc = std::process::Command::new("rustc")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        Self {
            cores,
            memory_mib,
            cpu_model,
            os,
            kernel,
            postgres: None,
            postgres_settings: HashMap::new(),
            nats_server: None,
            rustc,
            sidekick: env!("CARGO_PKG_VERSION"),
            build: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        }
    }
}

fn read(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Clock ticks per second of `/proc/*/stat` times (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The fields after the `(comm)` of a `/proc/<pid>/stat` line, and the comm.
fn stat_fields(stat: &str) -> Option<(&str, Vec<&str>)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = &stat[open + 1..close];
    Some((comm, stat[close + 1..].split_whitespace().collect()))
}

/// User + system CPU seconds of one process (`None` once it is gone).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = read(format!("/proc/{pid}/stat"))?;
    let (_, fields) = stat_fields(&stat)?;
    // After the comm: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// Resident memory now and its peak (`VmRSS`, `VmHWM`), in MiB.
pub fn memory_mib(pid: u32) -> Option<(f64, f64)> {
    let status = read(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kib| kib / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// CPU seconds of every process whose command name is one of `names`, summed per
/// name (PostgreSQL runs a process per connection; all of them count).
pub fn cpu_seconds_by_name(names: &[&str]) -> HashMap<String, f64> {
    let mut totals: HashMap<String, f64> = names.iter().map(|n| (n.to_string(), 0.0)).collect();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return totals;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Some(stat) = read(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((comm, _)) = stat_fields(&stat) else {
            continue;
        };
        if let Some(total) = totals.get_mut(comm) {
            *total += cpu_seconds(pid).unwrap_or(0.0);
        }
    }
    totals
}

/// Busy and total jiffies of the whole machine (`/proc/stat`), for a busy share.
pub fn system_jiffies() -> Option<(u64, u64)> {
    let stat = read("/proc/stat")?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let values: Vec<u64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().sum();
    // idle and iowait are fields 4 and 5.
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// What a set of processes and the machine spent between two points in time.
#[derive(Debug, Clone, Default)]
pub struct CpuMark {
    pub server: Option<f64>,
    pub loadgen: Option<f64>,
    pub by_name: HashMap<String, f64>,
    pub system: Option<(u64, u64)>,
}

pub const SERVICES: &[&str] = &["postgres", "nats-server"];

impl CpuMark {
    pub fn now(server: Option<u32>) -> Self {
        Self {
            server: server.and_then(cpu_seconds),
            loadgen: cpu_seconds(std::process::id()),
            by_name: cpu_seconds_by_name(SERVICES),
            system: system_jiffies(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CpuUse {
    /// CPU seconds of the server under test during the load.
    pub server_cpu_s: Option<f64>,
    /// The same, divided by the load's wall time: cores' worth in use on average.
    pub server_cores_avg: Option<f64>,
    /// The load generator's own CPU (it shares the machine with everything else).
    pub loadgen_cpu_s: Option<f64>,
    pub postgres_cpu_s: Option<f64>,
    pub nats_cpu_s: Option<f64>,
    /// Share of all cores busy during the load, whoever used them.
    pub system_busy_pct: Option<f64>,
}

impl CpuUse {
    pub fn between(a: &CpuMark, b: &CpuMark, wall_s: f64) -> Self {
        let diff = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => Some(super::stats::round3(y - x)),
            _ => None,
        };
        let service = |name: &str| diff(a.by_name.get(name).copied(), b.by_name.get(name).copied());
        let server_cpu_s = diff(a.server, b.server);
        Self {
            server_cpu_s,
            server_cores_avg: server_cpu_s
                .filter(|_| wall_s > 0.0)
                .map(|s| super::stats::round3(s / wall_s)),
            loadgen_cpu_s: diff(a.loadgen, b.loadgen),
            postgres_cpu_s: service("postgres"),
            nats_cpu_s: service("nats-server"),
            system_busy_pct: match (a.system, b.system) {
                (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => Some(super::stats::round3(
                    100.0 * (b1 - b0) as f64 / (t1 - t0) as f64,
                )),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_be_measured() {
        let me = std::process::id();
        assert!(cpu_seconds(me).is_some());
        let (rss, peak) = memory_mib(me).expect("linux /proc");
        assert!(rss > 0.0 && peak >= rss);
        assert!(Machine::local().cores >= 1);
    }

    #[test]
    fn comm_with_spaces_and_parens_is_parsed() {
        let (comm, fields) = stat_fields("42 (a (b) c) S 1 2 3").expect("parses");
        assert_eq!(comm, "a (b) c");
        assert_eq!(fields[0], "S");
    }
}
