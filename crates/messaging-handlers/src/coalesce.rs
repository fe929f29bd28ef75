//! Coalesced delivery: events of one conversation waiting together in a broadcast batch go
//! to each connection as one frame, `{"type":"BATCH","events":[…]}`, instead of one post per
//! event (docs/protocol.md, "BATCH"). API Gateway bills and throttles per post (in 32 KB
//! units), so a burst of reactions, edits, read receipts or presence in a busy conversation
//! costs one post per connection instead of one per event; typing and presence churn is first
//! collapsed to each user's latest state (`broadcast::superseded`).
//!
//! What joins a batch ([`joinable`]): a job for every subscriber of a conversation, from the
//! start of its list (no page, no retry or continuation: those name their own recipients),
//! not expired, and without notifications to write (messages of large conversations keep
//! their own run: they page through thousands of recipients and notify members). The frames
//! of one batch together stay under [`MAX_BATCH_BYTES`], so every connection's BATCH fits
//! API Gateway's 32 KB frame.

use messaging_aws::BroadcastJob;
use messaging_core::protocol::MAX_FRAME_BYTES;
use messaging_core::ConversationId;

/// The most a BATCH frame holds: API Gateway's 32 KB frame, less room for the wrapper.
pub const MAX_BATCH_BYTES: usize = MAX_FRAME_BYTES - 64;

/// The conversation whose subscribers `job` goes to, when it may be delivered together with
/// others (see the module's documentation); `now`: epoch ms.
pub fn joinable(job: &BroadcastJob, now: i64) -> Option<&ConversationId> {
    // The job first queued, or one shard's part of it (which reads that shard from its start).
    let first = job.lineage.is_empty() || job.lineage == format!("s{}.", job.shard);
    let whole_list = job.only.is_none() && job.after.is_none() && first;
    let live = job.expires_at.is_none_or(|at| at > now);
    if !(whole_list && live && job.notify.is_none() && job.attempt == 0) {
        return None;
    }
    if job.frame.len() >= MAX_BATCH_BYTES {
        return None;
    }
    job.subscribers_of()
}

/// What one connection is sent for `frames` (each a JSON object, in their order): the frame
/// itself when it is alone, else one BATCH holding them all. The caller keeps the total under
/// [`MAX_BATCH_BYTES`].
pub fn frame_for(frames: &[&str]) -> String {
    match frames {
        [one] => (*one).to_owned(),
        many => format!(r#"{{"type":"BATCH","events":[{}]}}"#, many.join(",")),
    }
}

/// The bytes `frames` take inside a BATCH (each, and a comma between).
pub fn batch_bytes<'a>(frames: impl IntoIterator<Item = &'a str>) -> usize {
    frames.into_iter().map(|f| f.len() + 1).sum::<usize>() + r#"{"type":"BATCH","events":[]}"#.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use messaging_aws::Audience;
    use messaging_core::{ConnectionId, TenantId};

    fn job(frame: &str) -> BroadcastJob {
        BroadcastJob::new(
            "e",
            TenantId::parse("acme").unwrap(),
            Audience::Subscribers(ConversationId::parse("general").unwrap()),
            frame.into(),
        )
    }

    #[test]
    fn a_batch_is_a_json_object_holding_the_events_in_order_and_one_event_goes_alone() {
        let a = r#"{"type":"TYPING_STOP","conversationId":"general","userId":"ann"}"#;
        let b = r#"{"type":"PRESENCE","userId":"bob","status":"away"}"#;
        assert_eq!(frame_for(&[a]), a);
        let both = frame_for(&[a, b]);
        let parsed: serde_json::Value = serde_json::from_str(&both).unwrap();
        assert_eq!(parsed["type"], "BATCH");
        assert_eq!(parsed["events"][0]["type"], "TYPING_STOP");
        assert_eq!(parsed["events"][1]["userId"], "bob");
        assert_eq!(
            both.len(),
            batch_bytes([a, b]) - 1,
            "the estimate holds the frame"
        );
    }

    #[test]
    fn only_fresh_whole_list_jobs_without_notifications_join_a_batch() {
        let frame = r#"{"type":"READ_RECEIPT","conversationId":"general","userId":"ann","seq":3}"#;
        let fresh = job(frame);
        assert_eq!(joinable(&fresh, 0).map(|c| c.as_str()), Some("general"));
        let mut retry = fresh.retry(vec![ConnectionId::parse("c1").unwrap()]);
        assert!(
            joinable(&retry, 0).is_none(),
            "a retry names its recipients"
        );
        retry = fresh.next_page(ConnectionId::parse("c1").unwrap());
        assert!(joinable(&retry, 0).is_none(), "a later page");
        let mut expired = fresh.clone();
        expired.expires_at = Some(10);
        assert!(joinable(&expired, 10).is_none());
        assert!(joinable(&expired, 9).is_some());
        let huge = job(&format!(
            r#"{{"type":"X","t":"{}"}}"#,
            "x".repeat(MAX_BATCH_BYTES)
        ));
        assert!(joinable(&huge, 0).is_none());
    }
}
