//! The simulator's clock, its event queue and its random numbers: everything that makes a
//! run repeatable. Time is whole microseconds from the start of the scenario; events at the
//! same time run in the order they were scheduled; every random draw comes from one seeded
//! SplitMix64, so a scenario and a seed give the same report, bit for bit, on every machine.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Microseconds since the scenario began.
pub type Time = u64;

pub const MILLI: Time = 1_000;
pub const SECOND: Time = 1_000_000;

/// Milliseconds (fractional) to [`Time`].
pub fn ms(millis: f64) -> Time {
    (millis * 1_000.0).round().max(0.0) as Time
}

/// Seconds as a float, for reports.
pub fn secs(t: Time) -> f64 {
    t as f64 / SECOND as f64
}

/// SplitMix64 (Steele, Lea and Flood, 2014): small, fast, and every seed is a good one.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        self.next_u64() % n
    }

    /// A service time around `mean`: uniform in [mean/2, 3·mean/2), so a mean holds and no
    /// draw is zero or unbounded.
    pub fn around(&mut self, mean: Time) -> Time {
        let half = mean / 2;
        half + self.below(mean.max(1))
    }

    /// Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): uniform in
    /// [0, min(cap, base · 2^attempt)).
    pub fn full_jitter(&mut self, base: Time, cap: Time, attempt: u32) -> Time {
        let ceiling = base.saturating_mul(1u64 << attempt.min(30)).min(cap);
        self.below(ceiling.max(1))
    }
}

/// The event queue: earliest first, ties in scheduling order.
pub struct Queue<E> {
    heap: BinaryHeap<Reverse<(Time, u64, usize)>>,
    slots: Vec<Option<E>>,
    free: Vec<usize>,
    seq: u64,
    pub now: Time,
    /// Events handled so far: the simulator's own cost, in its report.
    pub handled: u64,
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Queue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            seq: 0,
            now: 0,
            handled: 0,
        }
    }
}

impl<E> Queue<E> {
    /// `event` at `at` (never in the past: an earlier time runs now).
    pub fn at(&mut self, at: Time, event: E) {
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(event);
                i
            }
            None => {
                self.slots.push(Some(event));
                self.slots.len() - 1
            }
        };
        self.seq += 1;
        self.heap.push(Reverse((at.max(self.now), self.seq, slot)));
    }

    /// `event` after `delay` from now.
    pub fn after(&mut self, delay: Time, event: E) {
        self.at(self.now + delay, event);
    }

    /// The next event, the clock moved to its time.
    pub fn pop(&mut self) -> Option<E> {
        let Reverse((at, _, slot)) = self.heap.pop()?;
        self.now = at;
        self.handled += 1;
        self.free.push(slot);
        self.slots[slot].take()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_in_time_order_and_ties_in_scheduling_order() {
        let mut q = Queue::default();
        q.at(30, "c");
        q.at(10, "a");
        q.at(30, "d");
        q.at(20, "b");
        let mut out = Vec::new();
        while let Some(e) = q.pop() {
            out.push((q.now, e));
        }
        assert_eq!(out, [(10, "a"), (20, "b"), (30, "c"), (30, "d")]);
        assert_eq!(q.handled, 4);
    }

    #[test]
    fn an_event_scheduled_in_the_past_runs_now_and_the_clock_never_goes_back() {
        let mut q = Queue::default();
        q.at(100, 1);
        assert_eq!(q.pop(), Some(1));
        q.at(50, 2);
        assert_eq!(q.pop(), Some(2));
        assert_eq!(q.now, 100);
    }

    #[test]
    fn the_same_seed_draws_the_same_numbers_and_draws_stay_in_their_ranges() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1_000 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut r = Rng::new(1);
        for attempt in 0..40 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            let d = r.around(10 * MILLI);
            assert!((5 * MILLI..15 * MILLI).contains(&d), "{d}");
            let j = r.full_jitter(SECOND, 30 * SECOND, attempt);
            assert!(
                j < (SECOND << attempt.min(30)).min(30 * SECOND),
                "{attempt}: {j}"
            );
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
