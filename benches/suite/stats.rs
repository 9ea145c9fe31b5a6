//! Percentiles, number formatting and the fixed-seed random source the
//! tables share.

use std::time::Duration;

/// Linear-interpolated percentile (`p` in 0..=100) of sorted values; NaN
/// when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub n: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn summarize(values: &[f64]) -> Summary {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Summary {
        n: v.len(),
        p50: percentile(&v, 50.0),
        p90: percentile(&v, 90.0),
        p99: percentile(&v, 99.0),
        max: v.last().copied().unwrap_or(f64::NAN),
    }
}

pub fn median(values: &[f64]) -> f64 {
    summarize(values).p50
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Milliseconds with about three significant digits.
pub fn fmt_ms(x: f64) -> String {
    if !x.is_finite() {
        "—".into()
    } else if x.abs() < 10.0 {
        format!("{x:.2} ms")
    } else if x.abs() < 100.0 {
        format!("{x:.1} ms")
    } else {
        format!("{x:.0} ms")
    }
}

/// A plain number with `digits` decimals, or a dash.
pub fn fmt_num(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "—".into()
    }
}

/// `a / b` as "1.23×", or a dash when it means nothing.
pub fn fmt_ratio(a: f64, b: f64) -> String {
    if a.is_finite() && b.is_finite() && b != 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "—".into()
    }
}

pub fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "MISSED" }
}

/// splitmix64: with a fixed seed every tool gets the same section lengths.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
