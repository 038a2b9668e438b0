//! Percentiles and time buckets over recorded samples.
//!
//! A bench run records a few hundred thousand numbers at most, so a sorted `Vec`
//! is exact and cheap; no histogram approximation is needed. Percentiles use the
//! nearest-rank method, which only ever returns observed values and is monotonic
//! in the quantile (p50 ≤ p95 ≤ p99 ≤ max holds by construction).

use serde::Serialize;

/// The distribution of one figure, in the figure's unit (milliseconds for latencies).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Summary {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    /// Summarises `values`; an empty set gives all zeros (and `count: 0`).
    pub fn of(values: &[f64]) -> Self {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return Self::default();
        }
        sorted.sort_by(f64::total_cmp);
        let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
        Self {
            count: sorted.len(),
            p50: nearest_rank(&sorted, 0.50),
            p95: nearest_rank(&sorted, 0.95),
            p99: nearest_rank(&sorted, 0.99),
            max: sorted[sorted.len() - 1],
            mean,
        }
    }

    /// The same summary with every value rounded to 3 decimals, for readable JSON.
    pub fn rounded(self) -> Self {
        Self {
            p50: round3(self.p50),
            p95: round3(self.p95),
            p99: round3(self.p99),
            max: round3(self.max),
            mean: round3(self.mean),
            ..self
        }
    }
}

/// The smallest observed value with at least `q` of the observations at or below it.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// `a / b`, or `None` when `b` is zero or either is not a number.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite() && b.is_finite()).then(|| round3(a / b))
}

/// Groups `(time_s, value)` points into buckets of `width_s` seconds and summarises
/// each; buckets with no points are left out.
pub fn buckets(points: &[(f64, f64)], width_s: f64) -> Vec<(f64, Summary)> {
    if points.is_empty() || width_s <= 0.0 {
        return Vec::new();
    }
    let mut grouped: std::collections::BTreeMap<u64, Vec<f64>> = Default::default();
    for &(t, v) in points {
        let bucket = (t.max(0.0) / width_s).floor() as u64;
        grouped.entry(bucket).or_default().push(v);
    }
    grouped
        .into_iter()
        .map(|(b, vs)| ((b as f64 + 0.5) * width_s, Summary::of(&vs)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_observed_values_in_order() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Summary::of(&values);
        assert_eq!((s.p50, s.p95, s.p99, s.max), (50.0, 95.0, 99.0, 100.0));
        assert_eq!(s.count, 100);
        let one = Summary::of(&[7.0]);
        assert_eq!((one.p50, one.p99, one.max), (7.0, 7.0, 7.0));
        assert_eq!(Summary::of(&[]).count, 0);
    }

    #[test]
    fn buckets_group_by_time() {
        let points = [(0.1, 1.0), (0.9, 3.0), (2.5, 10.0)];
        let b = buckets(&points, 1.0);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].1.max, 3.0);
        assert_eq!(b[1].0, 2.5);
    }

    #[test]
    fn ratios_refuse_division_by_zero() {
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
    }
}
