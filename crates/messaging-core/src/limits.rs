//! Rate limits: how much one connection, one user and one tenant may send, and the counting
//! that enforces them without a database write per frame.
//!
//! - **Connection**: a token bucket over every frame (`frames_per_second`, `frame_burst`),
//!   counted where the frame is handled. A connection's frames may be handled by several warm
//!   Lambda sandboxes at once, so its limit holds per sandbox; the user's limit bounds the rest.
//! - **User** and **tenant**: frames that reach other people (messages, edits, reactions,
//!   comments, shares, new conversations) in fixed windows of [`WINDOW_MILLIS`]. Each sandbox
//!   counts locally and adds its count to a shared counter only every [`Window::batch`]
//!   frames, learning the others' count from the answer. A normal user never reaches a batch,
//!   so costs nothing; at the limit the cost is one write per batch.
//!
//! A sandbox only ever underestimates what the others sent (their counts only grow within a
//! window), so it never refuses a frame the limit allows; it may admit up to one batch per
//! sandbox more than the limit before it learns (with reserved concurrency R, at most
//! R × batch). Refused frames say when to try again: the end of the window, or when the bucket
//! has a token.

use serde::{Deserialize, Serialize};

/// Length of a user's and a tenant's counting window.
pub const WINDOW_MILLIS: i64 = 10_000;

/// What one tenant's connections, users and the tenant as a whole may send. Operators may
/// set them per tenant; the defaults fit a busy team chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RateLimits {
    /// Frames per second one connection may send, any kind.
    pub frames_per_second: u32,
    /// Frames one connection may send at once after a pause.
    pub frame_burst: u32,
    /// Sends (frames other people receive) per minute by one user, all connections together.
    pub user_sends_per_minute: u32,
    /// Sends per minute by the whole tenant.
    pub tenant_sends_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            frames_per_second: 10,
            frame_burst: 20,
            user_sends_per_minute: 120,
            tenant_sends_per_minute: 3_000,
        }
    }
}

/// Largest value any limit may take (a typo of a few zeros is refused, not obeyed).
pub const MAX_LIMIT: u32 = 1_000_000;

impl RateLimits {
    /// Refuses limits of 0 (which would lock everyone out) and absurd values.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("framesPerSecond", self.frames_per_second),
            ("frameBurst", self.frame_burst),
            ("userSendsPerMinute", self.user_sends_per_minute),
            ("tenantSendsPerMinute", self.tenant_sends_per_minute),
        ] {
            if value == 0 || value > MAX_LIMIT {
                return Err(format!("{name} must be 1 to {MAX_LIMIT}, not {value}"));
            }
        }
        Ok(())
    }

    /// A user's allowance per window.
    pub fn user_window(&self) -> u32 {
        per_window(self.user_sends_per_minute)
    }

    /// The tenant's allowance per window.
    pub fn tenant_window(&self) -> u32 {
        per_window(self.tenant_sends_per_minute)
    }
}

fn per_window(per_minute: u32) -> u32 {
    let windows_per_minute = (60_000 / WINDOW_MILLIS) as u32;
    per_minute.div_ceil(windows_per_minute).max(1)
}

/// The window an instant falls in (its start, epoch ms).
pub fn window_of(now_millis: i64) -> i64 {
    now_millis - now_millis.rem_euclid(WINDOW_MILLIS)
}

/// A token bucket: `rate` tokens a second up to `burst`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    tokens: f64,
    at: i64,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn full(burst: u32, now_millis: i64) -> Self {
        Self {
            tokens: f64::from(burst),
            at: now_millis,
        }
    }

    /// Takes a token at `now`, or says in how many milliseconds one will be there.
    pub fn take(&mut self, rate: u32, burst: u32, now_millis: i64) -> Result<(), u64> {
        let rate = f64::from(rate.max(1));
        let elapsed = (now_millis - self.at).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(burst.max(1)));
        self.at = now_millis.max(self.at);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / rate) * 1000.0).ceil() as u64)
        }
    }
}

/// One scope's count in the current window, as one sandbox knows it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Window {
    /// Start of the window counted.
    pub start: i64,
    /// Admitted by this sandbox in the window.
    pub local: u32,
    /// Admitted here and not yet added to the shared counter.
    pub unsynced: u32,
    /// What the other sandboxes had added when this one last synced.
    pub others: u32,
}

/// What [`Window::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Admitted; nothing to do.
    Admitted,
    /// Admitted; add `unsynced` to the shared counter now (then call [`Window::synced`]).
    Sync { add: u32, window: i64 },
    /// Refused: the window's allowance is spent; try again in `retry_after_ms`.
    Refused { retry_after_ms: u64 },
}

impl Window {
    /// Frames admitted here between two syncs for an allowance of `limit` a window.
    pub fn batch(limit: u32) -> u32 {
        (limit / 4).max(1)
    }

    /// Counts one frame at `now` against `limit` a window.
    pub fn admit(&mut self, limit: u32, now_millis: i64) -> Admission {
        let start = window_of(now_millis);
        if start != self.start {
            *self = Window {
                start,
                ..Default::default()
            };
        }
        if self.others.saturating_add(self.local) >= limit {
            let end = start + WINDOW_MILLIS;
            return Admission::Refused {
                retry_after_ms: (end - now_millis).max(1) as u64,
            };
        }
        self.local += 1;
        self.unsynced += 1;
        if self.unsynced >= Self::batch(limit) {
            Admission::Sync {
                add: self.unsynced,
                window: start,
            }
        } else {
            Admission::Admitted
        }
    }

    /// The shared counter of `window` is now `total` after this sandbox added `added`.
    pub fn synced(&mut self, window: i64, added: u32, total: u32) {
        if window != self.start {
            return;
        }
        self.unsynced = self.unsynced.saturating_sub(added);
        let synced_here = self.local.saturating_sub(self.unsynced);
        self.others = total.saturating_sub(synced_here);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn defaults_are_valid_and_zero_or_absurd_limits_are_refused() {
        assert!(RateLimits::default().validate().is_ok());
        let zero = RateLimits {
            user_sends_per_minute: 0,
            ..Default::default()
        };
        assert!(zero.validate().unwrap_err().contains("userSendsPerMinute"));
        let absurd = RateLimits {
            frame_burst: MAX_LIMIT + 1,
            ..Default::default()
        };
        assert!(absurd.validate().is_err());
        assert_eq!(RateLimits::default().user_window(), 20);
        assert_eq!(RateLimits::default().tenant_window(), 500);
    }

    #[test]
    fn unknown_fields_in_a_tenants_limits_are_refused() {
        let typo = r#"{"userSendsPerMinut": 5}"#;
        assert!(serde_json::from_str::<RateLimits>(typo).is_err());
        let partial: RateLimits = serde_json::from_str(r#"{"userSendsPerMinute": 5}"#).unwrap();
        assert_eq!(partial.user_sends_per_minute, 5);
        assert_eq!(partial.frames_per_second, 10);
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let mut bucket = Bucket::full(3, 0);
        for _ in 0..3 {
            assert!(bucket.take(2, 3, 0).is_ok());
        }
        assert_eq!(bucket.take(2, 3, 0), Err(500));
        assert!(bucket.take(2, 3, 500).is_ok());
        assert_eq!(bucket.take(2, 3, 500), Err(500));
        // A long pause refills only up to the burst.
        for _ in 0..3 {
            assert!(bucket.take(2, 3, 60_000).is_ok());
        }
        assert!(bucket.take(2, 3, 60_000).is_err());
    }

    #[test]
    fn a_window_refuses_past_its_limit_until_it_ends() {
        let mut w = Window::default();
        let now = 1_000_003_000;
        let mut syncs = 0;
        for i in 1..=20 {
            match w.admit(20, now) {
                Admission::Admitted => assert_ne!(i % 5, 0),
                Admission::Sync { add, window } => {
                    assert_eq!((add, i % 5), (5, 0), "a sync every 5 of 20");
                    w.synced(window, add, i);
                    syncs += 1;
                }
                refused => panic!("frame {i} {refused:?}"),
            }
        }
        assert_eq!(syncs, 4);
        assert_eq!(
            w.admit(20, now),
            Admission::Refused {
                retry_after_ms: 7_000
            }
        );
        assert_eq!(w.admit(20, now + 7_000), Admission::Admitted);
        // A tiny allowance syncs every frame, so other sandboxes always know.
        assert_eq!(Window::batch(3), 1);
    }

    #[test]
    fn what_other_sandboxes_sent_counts_once_known() {
        let mut here = Window::default();
        let now = 50_000;
        // Another sandbox already added 18 of a limit of 20.
        for _ in 0..4 {
            here.admit(20, now);
        }
        let Admission::Sync { add, window } = here.admit(20, now) else {
            panic!("the fifth frame syncs");
        };
        here.synced(window, add, 18 + add);
        assert!(matches!(here.admit(20, now), Admission::Refused { .. }));
    }

    proptest! {
        /// However frames of one window interleave over `sandboxes` sandboxes that sync through
        /// one shared counter, none refuses while the true total is under the limit, and the
        /// total admitted exceeds the limit by less than one batch per sandbox.
        #[test]
        fn sandboxes_never_refuse_wrongly_and_overshoot_by_less_than_a_batch_each(
            limit in 1u32..200,
            sandboxes in 1usize..6,
            order in proptest::collection::vec(0usize..6, 1..600),
        ) {
            let now = 1_700_000_000_000;
            let mut windows = vec![Window::default(); sandboxes];
            let mut shared = 0u32;
            let mut admitted = 0u32;
            for pick in order {
                let w = &mut windows[pick % sandboxes];
                match w.admit(limit, now) {
                    Admission::Admitted => admitted += 1,
                    Admission::Sync { add, window } => {
                        admitted += 1;
                        shared += add;
                        w.synced(window, add, shared);
                    }
                    Admission::Refused { .. } => {
                        prop_assert!(admitted >= limit, "refused at {admitted} of {limit}");
                    }
                }
            }
            let slack = Window::batch(limit) * sandboxes as u32;
            prop_assert!(admitted < limit + slack, "{admitted} admitted, limit {limit}");
        }
    }
}
