//! What a write to the store costs, so that an upload answered from global dedupe takes as long
//! as one that wrote its chunks.
//!
//! Storing a chunk costs an append, a sync and an index commit; a chunk the store already has
//! (for another user) costs none of that. Without care the answer time would tell a user whether
//! anybody stores a piece of content. The ingest therefore measures every real `put_many` (bytes,
//! time), fits `time = fixed + bytes × per_byte` over the most recent ones (least squares), and
//! lets an answer that skipped writes wait for what writing them would have cost. The estimate
//! follows the store as it is (disk, load), so the two answer times differ by noise only.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// Observations kept (the most recent ones).
const WINDOW: usize = 32;

/// Before the first measurement: a sync of a few milliseconds and 500 MB/s.
const PRIOR_FIXED_S: f64 = 0.004;
const PRIOR_PER_BYTE_S: f64 = 2e-9;

/// No estimate exceeds this (a stalled disk must not make dedupe hang).
const MAX_ESTIMATE: Duration = Duration::from_secs(5);

/// The recent cost of store writes (see the module docs); shared by all requests.
#[derive(Debug, Default)]
pub struct PutCost {
    seen: Mutex<VecDeque<(f64, f64)>>,
}

impl PutCost {
    /// Records that a `put_many` of `bytes` took `took`.
    pub fn observe(&self, bytes: u64, took: Duration) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() == WINDOW {
            seen.pop_front();
        }
        seen.push_back((bytes as f64, took.as_secs_f64()));
    }

    /// What a `put_many` of `bytes` would take now.
    pub fn estimate(&self, bytes: u64) -> Duration {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (fixed, per_byte) = fit(&seen);
        let secs = fixed + per_byte * bytes as f64;
        Duration::try_from_secs_f64(secs.max(0.0))
            .unwrap_or(MAX_ESTIMATE)
            .min(MAX_ESTIMATE)
    }
}

/// `(fixed, per_byte)` by least squares over `seen`; where the sizes do not vary enough for a
/// slope, half the mean time is taken as fixed and half as proportional to the mean size.
fn fit(seen: &VecDeque<(f64, f64)>) -> (f64, f64) {
    if seen.is_empty() {
        return (PRIOR_FIXED_S, PRIOR_PER_BYTE_S);
    }
    let n = seen.len() as f64;
    let mx = seen.iter().map(|(x, _)| x).sum::<f64>() / n;
    let my = seen.iter().map(|(_, y)| y).sum::<f64>() / n;
    let sxx: f64 = seen.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    let sxy: f64 = seen.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    // Sizes that differ by less than 10 % around their mean: no slope to speak of.
    if seen.len() < 3 || sxx.sqrt() < 0.1 * mx * n.sqrt() {
        return (my / 2.0, my / 2.0 / mx.max(1.0));
    }
    let slope = (sxy / sxx).max(0.0);
    let fixed = (my - slope * mx).max(0.0);
    (fixed, slope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    #[test]
    fn without_measurements_the_prior_holds() {
        let c = PutCost::default();
        assert!((ms(c.estimate(0)) - 4.0).abs() < 0.01);
        assert!((ms(c.estimate(1_000_000)) - 6.0).abs() < 0.01);
    }

    #[test]
    fn the_fit_follows_fixed_and_per_byte_costs() {
        let c = PutCost::default();
        // 3 ms + 1 ms per MB.
        for mb in [1u64, 4, 2, 8, 16, 1, 3] {
            c.observe(
                mb * 1_000_000,
                Duration::from_secs_f64(0.003 + 0.001 * mb as f64),
            );
        }
        assert!((ms(c.estimate(10_000_000)) - 13.0).abs() < 0.01);
        assert!((ms(c.estimate(0)) - 3.0).abs() < 0.01);
    }

    #[test]
    fn equal_sizes_give_their_mean_time() {
        let c = PutCost::default();
        for t in [4.0, 6.0, 5.0] {
            c.observe(1 << 20, Duration::from_secs_f64(t / 1000.0));
        }
        assert!((ms(c.estimate(1 << 20)) - 5.0).abs() < 0.01);
        // Only recent measurements count.
        for _ in 0..WINDOW {
            c.observe(1 << 20, Duration::from_millis(1));
        }
        assert!((ms(c.estimate(1 << 20)) - 1.0).abs() < 0.01);
    }

    #[test]
    fn estimates_are_bounded() {
        let c = PutCost::default();
        c.observe(1, Duration::from_secs(3600));
        assert_eq!(c.estimate(1), MAX_ESTIMATE);
    }
}
