//! A burst of conversation events: in one conversation of `clients` connections, `senders`
//! of them each react to a message, mark it read, start and stop typing, within half a
//! second. Counted at the clients: the events each received (a BATCH frame's events counted
//! one by one) and the frames API Gateway posted, so the API Gateway messages per event per
//! recipient. Before coalescing every event went to every recipient in a frame of its own:
//! 1.0 by construction, the deliveries owed (`events × recipients`) each a post.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::stack::Stack;

/// The event frames a burst makes.
const EVENTS: [&str; 4] = [
    "REACTIONS_CHANGED",
    "READ_RECEIPT",
    "TYPING_START",
    "TYPING_STOP",
];

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BurstResult {
    pub clients: usize,
    pub senders: usize,
    /// Reactions and read marks refused (retryably: they conflicted), so no event.
    pub refused: usize,
    /// Events accepted (each sender: a reaction, a read mark, typing start and stop; less the
    /// refused).
    pub events: usize,
    /// Deliveries owed without collapsing or coalescing: each event to every connection but
    /// its sender's, each in a frame of its own (the frames posted before coalescing).
    pub deliveries_owed: usize,
    /// Events the clients received (typing collapsed to its latest state counts once).
    pub events_received: usize,
    /// Frames the clients received carrying them (a BATCH counts once).
    pub frames_posted: usize,
    /// Of those, BATCH frames.
    pub batch_frames: usize,
    /// `frames_posted / deliveries_owed`: API Gateway messages per event per recipient (1.0
    /// before).
    pub messages_per_event_per_recipient: f64,
}

pub async fn run(
    stack: &Stack,
    clients: usize,
    senders: usize,
    first_index: usize,
) -> anyhow::Result<BurstResult> {
    let (arrive, mut arrivals) = mpsc::unbounded_channel();
    let all = stack.open(first_index, clients, arrive).await?;
    stack
        .seed("burst", "burst", &all.iter().collect::<Vec<_>>())
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The message everyone reacts to.
    let post = json!({ "type": "CHAT_MESSAGE", "requestId": "m", "conversationId": "burst", "content": { "text": "release at noon?" } });
    all[0].outgoing.send(post.to_string())?;
    let seq = loop {
        let Ok(Some((_, text, _))) =
            tokio::time::timeout(Duration::from_secs(10), arrivals.recv()).await
        else {
            anyhow::bail!("the burst's message was not acknowledged");
        };
        let frame: Value = serde_json::from_str(&text)?;
        if frame["requestId"] == "m" && frame["type"] == "ACK" {
            break frame["seq"].as_u64().unwrap_or(1);
        }
    };
    // Let the message's own deliveries pass.
    tokio::time::sleep(Duration::from_secs(2)).await;
    while arrivals.try_recv().is_ok() {}

    let emojis = ["👍", "🎉", "✅", "👀", "🚀", "❤️", "😂", "🙏", "🔥", "💯"];
    let senders = senders.min(clients).min(emojis.len());
    for (i, client) in all.iter().take(senders).enumerate() {
        for frame in [
            json!({ "type": "ADD_REACTION", "requestId": format!("b-react-{i}"), "conversationId": "burst", "seq": seq, "emoji": emojis[i] }),
            json!({ "type": "MARK_READ", "requestId": format!("b-read-{i}"), "conversationId": "burst", "seq": seq }),
            json!({ "type": "TYPING_START", "conversationId": "burst" }),
            json!({ "type": "TYPING_STOP", "conversationId": "burst" }),
        ] {
            client.outgoing.send(frame.to_string())?;
        }
    }
    let (mut events_received, mut frames_posted, mut batch_frames) = (0, 0, 0);
    // Reactions and read marks answered: ACKed ones are events, refused ones are not (ten
    // reactions to one message at once may conflict: the client is told to retry).
    let (mut acked, mut refused) = (0usize, 0usize);
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(3) {
        let Ok(Some((_, text, _))) =
            tokio::time::timeout(Duration::from_millis(500), arrivals.recv()).await
        else {
            continue;
        };
        quiet_since = Instant::now();
        let frame: Value = serde_json::from_str(&text)?;
        if frame["requestId"]
            .as_str()
            .is_some_and(|id| id.starts_with("b-"))
        {
            if frame["type"] == "ACK" {
                acked += 1;
            } else {
                refused += 1;
            }
            continue;
        }
        let carried: Vec<Value> = if frame["type"] == "BATCH" {
            frame["events"].as_array().cloned().unwrap_or_default()
        } else {
            vec![frame.clone()]
        };
        let counted = carried
            .iter()
            .filter(|e| EVENTS.contains(&e["type"].as_str().unwrap_or_default()))
            .count();
        if counted == 0 {
            continue;
        }
        frames_posted += 1;
        events_received += counted;
        if frame["type"] == "BATCH" {
            batch_frames += 1;
        }
    }
    // Each sender's typing start and stop are events too (they get no answer).
    let events = acked + 2 * senders;
    let deliveries_owed = events * (clients - 1);
    Ok(BurstResult {
        clients,
        senders,
        refused,
        events,
        deliveries_owed,
        events_received,
        frames_posted,
        batch_frames,
        messages_per_event_per_recipient: frames_posted as f64 / deliveries_owed.max(1) as f64,
    })
}
