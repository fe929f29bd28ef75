//! What AWS meters: token buckets (API Gateway's account throttle and its new-connection
//! rate, a DynamoDB partition's write and read units) and a concurrency pool (Lambda's
//! account concurrency). Each counts what it granted and what it refused, so a report can say
//! which limit bound.

use crate::engine::{Time, SECOND};

/// A token bucket: `rate` tokens a second, at most `burst` saved; full at the start.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    pub name: &'static str,
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Time,
    /// Tokens granted.
    pub granted: f64,
    /// Requests refused (each a 429 / ThrottlingException).
    pub refused: u64,
}

impl TokenBucket {
    pub fn new(name: &'static str, rate_per_second: f64, burst: f64) -> Self {
        TokenBucket {
            name,
            rate: rate_per_second,
            burst,
            tokens: burst,
            at: 0,
            granted: 0.0,
            refused: 0,
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    fn refill(&mut self, now: Time) {
        if now > self.at {
            let earned = (now - self.at) as f64 * self.rate / SECOND as f64;
            self.tokens = (self.tokens + earned).min(self.burst);
            self.at = now;
        }
    }

    /// Takes `n` tokens at `now` if the bucket holds them; a refusal is counted.
    pub fn take(&mut self, now: Time, n: f64) -> bool {
        self.refill(now);
        if self.tokens + 1e-9 >= n {
            self.tokens -= n;
            self.granted += n;
            true
        } else {
            self.refused += 1;
            false
        }
    }

    /// The share of the whole period's capacity that was granted (1.0: saturated).
    pub fn utilisation(&self, period: Time) -> f64 {
        if period == 0 {
            return 0.0;
        }
        self.granted / (self.rate * period as f64 / SECOND as f64 + self.burst)
    }
}

/// Concurrency: at most `limit` held at once; a refusal is counted.
#[derive(Clone, Debug)]
pub struct Pool {
    pub name: &'static str,
    pub limit: u32,
    pub in_use: u32,
    pub peak: u32,
    pub refused: u64,
}

impl Pool {
    pub fn new(name: &'static str, limit: u32) -> Self {
        Pool {
            name,
            limit,
            in_use: 0,
            peak: 0,
            refused: 0,
        }
    }

    pub fn acquire(&mut self) -> bool {
        if self.in_use < self.limit {
            self.in_use += 1;
            self.peak = self.peak.max(self.in_use);
            true
        } else {
            self.refused += 1;
            false
        }
    }

    pub fn release(&mut self) {
        debug_assert!(self.in_use > 0, "{} released more than acquired", self.name);
        self.in_use = self.in_use.saturating_sub(1);
    }
}

/// Latencies (µs), for percentiles.
#[derive(Clone, Debug, Default)]
pub struct Latencies(Vec<Time>);

impl Latencies {
    pub fn record(&mut self, t: Time) {
        self.0.push(t);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `p`-th percentile (nearest rank), in seconds; 0 when empty.
    pub fn percentile(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.sort_unstable();
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1] as f64 / SECOND as f64
    }

    /// (seconds, fraction at or below), `points` of them, for a CDF plot.
    pub fn cdf(&mut self, points: usize) -> Vec<(f64, f64)> {
        if self.0.is_empty() {
            return Vec::new();
        }
        self.0.sort_unstable();
        let n = self.0.len();
        (1..=points)
            .map(|i| {
                let rank = (i * n).div_ceil(points);
                (
                    self.0[rank - 1] as f64 / SECOND as f64,
                    rank as f64 / n as f64,
                )
            })
            .collect()
    }
}

/// Counts per time bin, for the plots: one row per bin, one column per named series.
#[derive(Clone, Debug)]
pub struct Series {
    pub bin: Time,
    pub names: Vec<&'static str>,
    pub rows: Vec<Vec<f64>>,
}

impl Series {
    pub fn new(bin: Time, names: &[&'static str]) -> Self {
        Series {
            bin,
            names: names.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn add(&mut self, at: Time, column: usize, n: f64) {
        let row = (at / self.bin) as usize;
        if self.rows.len() <= row {
            self.rows.resize(row + 1, vec![0.0; self.names.len()]);
        }
        self.rows[row][column] += n;
    }

    /// The series as CSV: `t_s` then one column per name, each a rate per second.
    pub fn csv(&self) -> String {
        let mut out = format!("t_s,{}\n", self.names.join(","));
        let per_second = SECOND as f64 / self.bin as f64;
        for (i, row) in self.rows.iter().enumerate() {
            out.push_str(&format!(
                "{:.3}",
                (i as u64 * self.bin) as f64 / SECOND as f64
            ));
            for v in row {
                out.push_str(&format!(",{:.1}", v * per_second));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::MILLI;

    #[test]
    fn a_bucket_grants_its_burst_then_its_rate_and_counts_refusals() {
        let mut b = TokenBucket::new("api", 1_000.0, 10.0);
        let granted = (0..20).filter(|_| b.take(0, 1.0)).count();
        assert_eq!(granted, 10, "the burst");
        assert_eq!(b.refused, 10);
        // 5 ms later: 5 more tokens.
        let granted = (0..20).filter(|_| b.take(5 * MILLI, 1.0)).count();
        assert_eq!(granted, 5);
        // Idle for a second: never more than the burst.
        let granted = (0..50).filter(|_| b.take(2 * SECOND, 1.0)).count();
        assert_eq!(granted, 10);
        assert_eq!(b.granted, 25.0);
    }

    #[test]
    fn over_a_long_run_a_bucket_grants_its_rate_whatever_the_demand() {
        let mut b = TokenBucket::new("ddb", 1_000.0, 1_000.0);
        let mut granted = 0;
        // 5,000 requests a second for 10 s.
        for i in 0..50_000u64 {
            if b.take(i * 200, 1.0) {
                granted += 1;
            }
        }
        assert!((10_900..=11_001).contains(&granted), "{granted}");
        assert!(b.utilisation(10 * SECOND) > 0.99);
    }

    #[test]
    fn a_pool_refuses_over_its_limit_and_keeps_its_peak() {
        let mut p = Pool::new("lambda", 2);
        assert!(p.acquire() && p.acquire());
        assert!(!p.acquire());
        p.release();
        assert!(p.acquire());
        assert_eq!((p.peak, p.refused, p.in_use), (2, 1, 2));
    }

    #[test]
    fn percentiles_are_nearest_rank_and_the_cdf_ends_at_one() {
        let mut l = Latencies::default();
        for ms in 1..=100u64 {
            l.record(ms * MILLI);
        }
        assert_eq!(l.percentile(50.0), 0.050);
        assert_eq!(l.percentile(99.0), 0.099);
        assert_eq!(l.percentile(100.0), 0.100);
        let cdf = l.cdf(10);
        assert_eq!(cdf.len(), 10);
        assert_eq!(cdf.last(), Some(&(0.100, 1.0)));
    }

    #[test]
    fn a_series_reports_rates_per_second_by_bin() {
        let mut s = Series::new(100 * MILLI, &["a", "b"]);
        s.add(0, 0, 5.0);
        s.add(250 * MILLI, 1, 1.0);
        assert_eq!(
            s.csv(),
            "t_s,a,b\n0.000,50.0,0.0\n0.100,0.0,0.0\n0.200,0.0,10.0\n"
        );
    }
}
