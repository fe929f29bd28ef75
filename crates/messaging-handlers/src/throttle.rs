//! The rate limiter of the WebSocket functions: one per warm sandbox, kept across
//! invocations, counting in memory (`messaging_core::limits`) and adding to the shared counters
//! in DynamoDB only once per batch of sends. A refused frame is answered `THROTTLED` with
//! `retryAfterMs` and does nothing else.
//!
//! Failing open: if the shared counter cannot be written, the frame is admitted on the local
//! count (the limiter must not take the service down with it) and the failure is logged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::warn;

use messaging_aws::MessagingTable;
use messaging_core::limits::{Admission, Bucket, RateLimits, Window};
use messaging_core::{ConnectionId, Principal, ProtocolError, TenantId, UserId};

use crate::metrics::{self, Metric};

/// Frames that reach other people: counted against the user's and the tenant's windows.
/// Every frame, these included, counts against its connection's bucket.
pub const SENDS: &[&str] = &[
    "CHAT_MESSAGE",
    "EDIT_MESSAGE",
    "DELETE_MESSAGE",
    "ADD_REACTION",
    "REMOVE_REACTION",
    "CREATE_CONVERSATION",
    "ADD_MEMBERS",
    "REMOVE_MEMBER",
    "FILE_COMMENT",
    "SHARE_FILE",
    "REVOKE_FILE_SHARE",
    "REGISTER_FILE",
];

/// How long a tenant's limits are cached before they are read again.
pub const LIMITS_TTL: Duration = Duration::from_secs(60);
/// Most connections, users and tenants tracked at once; past it the oldest state is dropped
/// (a dropped bucket starts full again, a dropped window from what the table says next sync).
const MAX_TRACKED: usize = 50_000;

/// Counts of what the limiter did (benchmarks, tests).
#[derive(Debug, Default)]
pub struct LimiterStats {
    pub admitted: AtomicU64,
    pub refused: AtomicU64,
    /// UpdateItems on the shared counters.
    pub syncs: AtomicU64,
    /// GetItems of tenants' limits.
    pub limit_reads: AtomicU64,
}

#[derive(Default)]
struct State {
    limits: HashMap<TenantId, (RateLimits, tokio::time::Instant)>,
    /// Each connection's state, as of its last checked frame (so a flood is refused before
    /// its caller is even looked up).
    connections: HashMap<ConnectionId, ConnectionState>,
    users: HashMap<(TenantId, UserId), Window>,
    tenants: HashMap<TenantId, Window>,
}

/// A sandbox's rate limiter; clones share it.
#[derive(Clone, Default)]
pub struct Limiter {
    state: Arc<Mutex<State>>,
    /// Used when a tenant has none of its own.
    pub defaults: RateLimits,
    pub stats: Arc<LimiterStats>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("defaults", &self.defaults)
            .finish()
    }
}

/// What the limiter knows of one connection.
struct ConnectionState {
    bucket: Bucket,
    /// Its tenant's frame rate and burst when last checked.
    rate: u32,
    burst: u32,
    /// Its sends are refused until then (epoch ms), with this message: its user's or tenant's
    /// window was full.
    sends_refused: Option<(i64, String)>,
}

/// Which shared counter a sync adds to.
#[derive(Debug)]
struct CounterSync {
    user: Option<UserId>,
    window: i64,
    add: u32,
}

impl Limiter {
    pub fn new(defaults: RateLimits) -> Self {
        Self {
            defaults,
            ..Default::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses a frame from `connection` at `now` if its bucket, as last seen, is empty: the
    /// refusal costs no DynamoDB request at all, not even the caller's lookup, so a flooding
    /// connection cannot load the table (or a tenant's neighbours) with refused frames. Takes
    /// nothing: [`Self::check`] counts the frame once its caller is known.
    pub fn precheck(
        &self,
        connection: &ConnectionId,
        action: &str,
        now_millis: i64,
    ) -> Result<(), ProtocolError> {
        let refusal = {
            let state = self.lock();
            let Some(known) = state.connections.get(connection) else {
                return Ok(());
            };
            match known
                .bucket
                .clone()
                .take(known.rate, known.burst, now_millis)
            {
                Err(wait) => Some(connection_throttled(known.rate, wait)),
                Ok(()) => match &known.sends_refused {
                    Some((until, why)) if SENDS.contains(&action) && *until > now_millis => {
                        let wait = u64::try_from(until - now_millis).unwrap_or(0);
                        Some(ProtocolError::throttled(
                            format!("{why}; wait {wait} ms"),
                            wait,
                        ))
                    }
                    _ => None,
                },
            }
        };
        match refusal {
            None => Ok(()),
            Some(refusal) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                Err(refusal)
            }
        }
    }

    /// Admits or refuses one frame of `action` from `connection` of `caller` at `now`.
    pub async fn check(
        &self,
        table: &MessagingTable,
        caller: &Principal,
        connection: &ConnectionId,
        action: &str,
        now_millis: i64,
    ) -> Result<(), ProtocolError> {
        let limits = self.limits_of(table, &caller.tenant).await;
        let send = SENDS.contains(&action);
        let decision = {
            let mut state = self.lock();
            decide(&mut state, &limits, caller, connection, send, now_millis)
        };
        let syncs = match decision {
            Ok(syncs) => syncs,
            Err(refusal) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                metrics::emit(&caller.tenant, &[(Metric::Throttled, 1.0)]);
                return Err(refusal);
            }
        };
        self.stats.admitted.fetch_add(1, Ordering::Relaxed);
        for sync in syncs {
            self.stats.syncs.fetch_add(1, Ordering::Relaxed);
            let added = table
                .add_sends(&caller.tenant, sync.user.as_ref(), sync.window, sync.add)
                .await;
            let total = match added {
                Ok(total) => total,
                Err(e) => {
                    warn!(error = %e, "rate counter not updated; counting locally");
                    continue;
                }
            };
            let mut state = self.lock();
            let window = match &sync.user {
                Some(user) => state.users.get_mut(&(caller.tenant.clone(), user.clone())),
                None => state.tenants.get_mut(&caller.tenant),
            };
            if let Some(window) = window {
                window.synced(sync.window, sync.add, total);
            }
        }
        Ok(())
    }

    /// `tenant`'s limits: its own (cached [`LIMITS_TTL`]) or the defaults.
    async fn limits_of(&self, table: &MessagingTable, tenant: &TenantId) -> RateLimits {
        let cached = self.lock().limits.get(tenant).copied();
        if let Some((limits, at)) = cached {
            if at.elapsed() < LIMITS_TTL {
                return limits;
            }
        }
        self.stats.limit_reads.fetch_add(1, Ordering::Relaxed);
        let limits = match table.rate_limits(tenant).await {
            Ok(own) => own
                .filter(|l| l.validate().is_ok())
                .unwrap_or(self.defaults),
            Err(e) => {
                warn!(error = %e, "tenant's rate limits not read; the defaults apply");
                cached.map_or(self.defaults, |(l, _)| l)
            }
        };
        let mut state = self.lock();
        if state.limits.len() >= MAX_TRACKED {
            state.limits.clear();
        }
        state
            .limits
            .insert(tenant.clone(), (limits, tokio::time::Instant::now()));
        limits
    }
}

fn connection_throttled(frames_per_second: u32, wait: u64) -> ProtocolError {
    ProtocolError::throttled(
        format!(
            "this connection sent more than {frames_per_second} frames a second; wait {wait} ms"
        ),
        wait,
    )
}

/// The decision for one frame, under the lock: the connection's bucket, then (for a send) the
/// user's and the tenant's windows, both checked before either counts it.
fn decide(
    state: &mut State,
    limits: &RateLimits,
    caller: &Principal,
    connection: &ConnectionId,
    send: bool,
    now: i64,
) -> Result<Vec<CounterSync>, ProtocolError> {
    if state.connections.len() >= MAX_TRACKED {
        state.connections.clear();
    }
    let known = state
        .connections
        .entry(connection.clone())
        .or_insert_with(|| ConnectionState {
            bucket: Bucket::full(limits.frame_burst, now),
            rate: limits.frames_per_second,
            burst: limits.frame_burst,
            sends_refused: None,
        });
    (known.rate, known.burst) = (limits.frames_per_second, limits.frame_burst);
    if let Err(wait) = known
        .bucket
        .take(limits.frames_per_second, limits.frame_burst, now)
    {
        return Err(connection_throttled(limits.frames_per_second, wait));
    }
    if !send {
        return Ok(Vec::new());
    }
    if state.users.len() >= MAX_TRACKED {
        state.users.clear();
    }
    if state.tenants.len() >= MAX_TRACKED {
        state.tenants.clear();
    }
    let user_key = (caller.tenant.clone(), caller.user.clone());
    let mut user = state.users.get(&user_key).cloned().unwrap_or_default();
    let mut tenant = state
        .tenants
        .get(&caller.tenant)
        .cloned()
        .unwrap_or_default();
    let (user_limit, tenant_limit) = (limits.user_window(), limits.tenant_window());
    let user_admission = user.admit(user_limit, now);
    let tenant_admission = tenant.admit(tenant_limit, now);
    let refused = match (&user_admission, &tenant_admission) {
        (Admission::Refused { retry_after_ms }, _) => Some((
            format!(
                "you sent more than {} messages in a minute",
                limits.user_sends_per_minute
            ),
            *retry_after_ms,
        )),
        (_, Admission::Refused { retry_after_ms }) => Some((
            format!(
                "your portal sent more than {} messages in a minute",
                limits.tenant_sends_per_minute
            ),
            *retry_after_ms,
        )),
        _ => None,
    };
    if let Some((why, retry_after_ms)) = refused {
        // Until the window turns, this connection's sends are refused without a lookup.
        let until = now.saturating_add(i64::try_from(retry_after_ms).unwrap_or(i64::MAX));
        if let Some(known) = state.connections.get_mut(connection) {
            known.sends_refused = Some((until, why.clone()));
        }
        return Err(ProtocolError::throttled(
            format!("{why}; wait {retry_after_ms} ms"),
            retry_after_ms,
        ));
    }
    // Both admitted: only now does either count it.
    state.users.insert(user_key, user);
    state.tenants.insert(caller.tenant.clone(), tenant);
    let mut syncs = Vec::new();
    if let Admission::Sync { add, window } = user_admission {
        syncs.push(CounterSync {
            user: Some(caller.user.clone()),
            window,
            add,
        });
    }
    if let Admission::Sync { add, window } = tenant_admission {
        syncs.push(CounterSync {
            user: None,
            window,
            add,
        });
    }
    Ok(syncs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use messaging_core::{ErrorCode, Role};

    fn principal(tenant: &str, user: &str) -> Principal {
        Principal {
            tenant: TenantId::parse(tenant).unwrap(),
            user: UserId::parse(user).unwrap(),
            role: Role::User,
            name: None,
        }
    }

    #[test]
    fn a_refused_send_counts_against_neither_window() {
        let mut state = State::default();
        let limits = RateLimits {
            frames_per_second: 1000,
            frame_burst: 1000,
            user_sends_per_minute: 6, // 1 a window
            tenant_sends_per_minute: 600,
        };
        let (ann, bob) = (principal("t", "ann"), principal("t", "bob"));
        let c = ConnectionId::parse("c1=").unwrap();
        let now = 1_000_000;
        assert!(decide(&mut state, &limits, &ann, &c, true, now).is_ok());
        let refused = decide(&mut state, &limits, &ann, &c, true, now).unwrap_err();
        assert_eq!(refused.code, ErrorCode::Throttled);
        assert!(refused
            .retry_after_ms
            .is_some_and(|ms| ms > 0 && ms <= 10_000));
        // ann's refusal did not spend the tenant's allowance: bob still sends.
        assert_eq!(state.tenants[&ann.tenant].local, 1);
        assert!(decide(&mut state, &limits, &bob, &c, true, now).is_ok());
    }

    #[test]
    fn reads_cost_only_the_connection_bucket() {
        let mut state = State::default();
        let limits = RateLimits {
            frames_per_second: 1,
            frame_burst: 2,
            ..Default::default()
        };
        let ann = principal("t", "ann");
        let c = ConnectionId::parse("c1=").unwrap();
        assert!(decide(&mut state, &limits, &ann, &c, false, 0).is_ok());
        assert!(decide(&mut state, &limits, &ann, &c, false, 0).is_ok());
        let refused = decide(&mut state, &limits, &ann, &c, false, 0).unwrap_err();
        assert_eq!(refused.retry_after_ms, Some(1000));
        assert!(state.users.is_empty() && state.tenants.is_empty());
        // Another connection of the same user has its own bucket.
        let other = ConnectionId::parse("c2=").unwrap();
        assert!(decide(&mut state, &limits, &ann, &other, false, 0).is_ok());
    }
}
