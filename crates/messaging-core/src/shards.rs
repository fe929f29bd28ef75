//! Subscription shards: where a conversation's fan-out subscriptions live.
//!
//! A conversation's subscriptions (one item per connected socket of a member) are spread
//! over `shards` partitions, `shards` growing with how many members the conversation has
//! had: one partition takes at most 1,000 writes a second, and a morning connect storm of a
//! 50,000-member conversation writes 50,000 subscriptions within a minute (docs/scale.md).
//!
//! Rules, each kept by a test below:
//! - The count only grows ([`shards_for`] is monotonic in members, and members are counted
//!   as added, never taken off), so every subscription ever written lies in a shard below
//!   the current count: a reader that reads shards `0..count` finds them all, even one
//!   written with a count read a moment before it grew.
//! - A connection's shard is a hash of its id ([`shard_of`]): sockets, not users, spread the
//!   load, and a storm's writes are even across shards.
//! - Where a subscription was written is remembered with it ([`Subscribed`], in the
//!   connection's registry), so it is deleted exactly, whatever the count is by then.

use std::fmt;

use crate::{ConnectionId, ConversationId};

/// Subscriptions per shard a conversation is sized for unless its first member said
/// otherwise: one broadcast run's page (`FANOUT_PER_RUN`), so a shard is posted by one run.
pub const DEFAULT_SHARD_SIZE: u32 = 2_000;

/// The most shards a conversation has: 64 × 2,000 = 128,000 sockets before shards grow
/// past their size (still correct, only fuller). Each shard is one fan-out job per event.
pub const MAX_SHARDS: u16 = 64;

/// The most members a conversation has for its members' presence changes to be broadcast to
/// it. Each member coming online is an event for every member: a storm of `n` connects owes
/// `n²` deliveries (250: 62,500; 5,000: 25 million, an hour of an account's API Gateway
/// quota). Above it a member's presence is read when it is wanted (the conversation's view
/// lists its members' presence), not pushed. Decided when a connection subscribes, from the
/// conversation's member count then.
pub const PRESENCE_MAX_MEMBERS: u64 = 250;

/// Whether a conversation of `members` members hears its members' presence changes.
pub fn announces_presence(members: u64) -> bool {
    members <= PRESENCE_MAX_MEMBERS
}

/// How many shards a conversation that has had `members` members has, at `shard_size`
/// subscriptions a shard: `ceil(members / shard_size)`, at least 1, at most [`MAX_SHARDS`].
/// Monotonic in `members` for a fixed size (the size is fixed when the conversation is
/// created, and stored with its count).
pub fn shards_for(members: u64, shard_size: u32) -> u16 {
    let size = u64::from(shard_size.max(1));
    let shards = members.div_ceil(size).clamp(1, u64::from(MAX_SHARDS));
    u16::try_from(shards).unwrap_or(MAX_SHARDS)
}

/// The shard (below `shards`) of a connection's subscriptions: FNV-1a of its id.
pub fn shard_of(connection: &ConnectionId, shards: u16) -> u16 {
    if shards <= 1 {
        return 0;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in connection.as_str().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // The high bits of FNV-1a mix better than the low ones.
    u16::try_from((hash >> 32) % u64::from(shards)).unwrap_or(0)
}

/// One subscription as its connection's registry records it: the conversation, and the shard
/// it was written to. Text form `conversation` (shard 0) or `conversation#shard`; ids hold no
/// `#`, so the two never meet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subscribed {
    pub conversation: ConversationId,
    pub shard: u16,
}

impl Subscribed {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (conversation, shard) = match text.split_once('#') {
            None => (text, 0),
            Some((conversation, shard)) => {
                let shard: u16 = shard
                    .parse()
                    .ok()
                    .filter(|s| *s > 0 && *s < MAX_SHARDS && !shard.starts_with('0'))
                    .ok_or_else(|| format!("subscription {text:?}: bad shard {shard:?}"))?;
                (conversation, shard)
            }
        };
        let conversation = ConversationId::parse(conversation)
            .map_err(|e| format!("subscription {text:?}: {e}"))?;
        Ok(Self {
            conversation,
            shard,
        })
    }
}

impl fmt::Display for Subscribed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.shard == 0 {
            write!(f, "{}", self.conversation)
        } else {
            write!(f, "{}#{}", self.conversation, self.shard)
        }
    }
}

impl serde::Serialize for Subscribed {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Subscribed {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_conversation_has_one_shard_per_shard_size_of_members_within_its_bounds() {
        assert_eq!(shards_for(0, DEFAULT_SHARD_SIZE), 1);
        assert_eq!(shards_for(2_000, DEFAULT_SHARD_SIZE), 1);
        assert_eq!(shards_for(2_001, DEFAULT_SHARD_SIZE), 2);
        assert_eq!(shards_for(5_000, DEFAULT_SHARD_SIZE), 3);
        assert_eq!(shards_for(100_000, DEFAULT_SHARD_SIZE), 50);
        assert_eq!(shards_for(10_000_000, DEFAULT_SHARD_SIZE), MAX_SHARDS);
        assert_eq!(shards_for(5, 0), 5, "a size of 0 counts as 1");
    }

    #[test]
    fn a_storm_of_connections_spreads_evenly_over_the_shards() {
        let shards = 25;
        let mut counts = vec![0u32; usize::from(shards)];
        for i in 0..50_000 {
            // API Gateway's ids: 16 characters of base64-ish text ending in '='.
            let id = ConnectionId::parse(format!("Ab{i:012}Cd=")).unwrap();
            counts[usize::from(shard_of(&id, shards))] += 1;
        }
        let (lo, hi) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
        // 2,000 expected a shard; a fair hash stays within a few standard deviations (~44).
        assert!(lo > 1_800 && hi < 2_200, "{counts:?}");
    }

    #[test]
    fn a_registry_entry_reads_back_as_written_and_refuses_what_no_writer_writes() {
        let c = ConversationId::parse("general").unwrap();
        for shard in [0, 1, 63] {
            let s = Subscribed {
                conversation: c.clone(),
                shard,
            };
            assert_eq!(Subscribed::parse(&s.to_string()).unwrap(), s);
        }
        assert_eq!(Subscribed::parse("general").unwrap().shard, 0);
        for bad in [
            "general#0",
            "general#01",
            "general#64",
            "general#x",
            "general#",
            "#1",
            "a#1#2",
        ] {
            assert!(Subscribed::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn the_count_never_shrinks_as_members_are_added(a in 0u64..1_000_000, b in 0u64..1_000_000, size in 1u32..10_000) {
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(shards_for(lo, size) <= shards_for(hi, size));
        }

        #[test]
        fn a_connection_lies_in_a_shard_below_the_count(id in "[A-Za-z0-9=_-]{1,64}", shards in 1u16..=MAX_SHARDS) {
            let id = ConnectionId::parse(id).unwrap();
            prop_assert!(shard_of(&id, shards) < shards);
        }
    }
}
