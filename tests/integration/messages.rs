//! Sequence numbers, idempotent send, catch-up after a reconnect, cursor-paged history,
//! edits, deletes, reactions and threads: through the real route and broadcast handlers
//! against moto.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use messaging_core::Role;
use serde_json::{json, Value};
use test_support::{
    chat, conversation, create, frames_for, key_map, keys, user, Client, TestStack,
};

fn msgs(frame: &Value, field: &str) -> Vec<(u64, String)> {
    frame[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {frame}"))
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["content"]["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn stored_messages(
    items: &std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    >,
    tenant: &str,
    id: &str,
) -> usize {
    let prefix = keys(tenant).prefix(|k| k.messages_prefix(&conversation(id)));
    items.keys().filter(|k| k.starts_with(&prefix)).count()
}

/// `client`'s catch-up of `team` from the start (GET_HISTORY `sinceSeq` 0).
async fn catch_up(stack: &TestStack, client: &Client) -> Value {
    let frame = json!({ "type": "GET_HISTORY", "conversationId": "team", "sinceSeq": 0 });
    stack.send(client, &frame).await.1
}

/// The seqs of a HISTORY page, in its order.
fn seqs_of(page: &Value) -> Vec<u64> {
    page["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages in {page}"))
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

/// As a send that died right after taking its number: acme's "team" conversation's `lastSeq`
/// moves on, nothing is written in the slot.
async fn take_a_number(stack: &TestStack) {
    change_team_conversation(
        stack,
        "ADD lastSeq :one",
        Some(AttributeValue::N("1".into())),
    )
    .await;
}

/// Applies `expression` (with `:one` = `one`) to acme's "team" conversation item, beside the
/// handlers.
async fn change_team_conversation(
    stack: &TestStack,
    expression: &str,
    one: Option<AttributeValue>,
) {
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.table_name)
        .set_key(Some(key_map(
            &keys("acme").key(|k| k.conversation(&conversation("team"))),
        )))
        .update_expression(expression)
        .set_expression_attribute_values(one.map(|v| [(":one".to_owned(), v)].into()))
        .send()
        .await
        .unwrap();
}

async fn two_member_conversation(stack: &TestStack, tenant: &str) -> (Client, Client) {
    let owner = stack.connect_as(tenant, "owner", Role::Owner).await;
    let bob = stack.connect_as(tenant, "bob", Role::User).await;
    let (_, ack) = stack
        .send(&owner, &create("team", "project", &["bob"]))
        .await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    stack.pump().await;
    stack.gateway.take();
    (owner, bob)
}

/// Posted by the route function (the default): a resend delivers the message again (the first
/// send may have died before posting), so bob gets copies, every one the same message (same
/// `seq`, same id), which the client's `(conversationId, seq)` rule keeps once.
#[tokio::test]
async fn resending_a_client_message_id_stores_one_copy_and_delivers_the_same_message() {
    let stack = TestStack::new().await;
    let to_bob = resend_and_race(&stack).await;
    let mut by_seq: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for frame in to_bob.iter().filter(|f| f["type"] == "NEW_MESSAGE") {
        by_seq
            .entry(frame["data"]["seq"].as_u64().unwrap())
            .or_default()
            .push(frame);
    }
    for (seq, copies) in &by_seq {
        assert!(
            copies.iter().all(|c| *c == copies[0]),
            "seq {seq}: {copies:?}"
        );
    }
    let texts: Vec<&Value> = by_seq
        .values()
        .map(|copies| &copies[0]["data"]["content"]["text"])
        .collect();
    assert_eq!(texts, ["Contract v2 attached", "sent twice at once"]);
}

/// Queued (`DirectFanout = 0`): SQS FIFO drops the resend's job as a duplicate of the first,
/// so bob gets each message exactly once.
#[tokio::test]
async fn resending_a_client_message_id_through_the_queue_stores_one_copy_and_delivers_it_once() {
    let stack = TestStack::new().await.queueing_messages();
    let to_bob = resend_and_race(&stack).await;
    let texts: Vec<&str> = to_bob
        .iter()
        .filter(|f| f["type"] == "NEW_MESSAGE")
        .map(|f| f["data"]["content"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["Contract v2 attached", "sent twice at once"],
        "{to_bob:?}"
    );
}

/// A message resent after a lost ACK and one sent twice at once: stored once each (the
/// loser of the race leaves a void), answered with the first copy's ids. What bob received.
async fn resend_and_race(stack: &TestStack) -> Vec<Value> {
    let (owner, bob) = two_member_conversation(stack, "acme").await;
    let frame = json!({ "type": "CHAT_MESSAGE", "conversationId": "team", "clientMessageId": "c-1", "content": { "text": "Contract v2 attached" } });

    let (_, first) = stack.send(&owner, &frame).await;
    assert_eq!(
        (first["type"].as_str(), first["seq"].as_u64()),
        (Some("ACK"), Some(1)),
        "{first}"
    );
    assert!(first.get("duplicate").is_none());
    // The resend, as after a lost ACK: same ids back, flagged, nothing new.
    let (_, again) = stack.send(&owner, &frame).await;
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(
        (&again["messageId"], &again["seq"]),
        (&first["messageId"], &first["seq"])
    );
    // And two copies racing each other.
    let racing = json!({ "type": "CHAT_MESSAGE", "conversationId": "team", "clientMessageId": "c-2", "content": { "text": "sent twice at once" } });
    let ((_, a), (_, b)) = tokio::join!(stack.send(&owner, &racing), stack.send(&owner, &racing));
    assert_eq!(a["messageId"], b["messageId"], "{a} {b}");
    assert_eq!(
        [
            a["duplicate"].as_bool().unwrap_or(false),
            b["duplicate"].as_bool().unwrap_or(false)
        ]
        .iter()
        .filter(|d| **d)
        .count(),
        1
    );

    stack.pump().await;
    let to_bob = frames_for(&stack.gateway.take(), &bob);
    // The racing copies took a number each; the loser's became a void, so the
    // conversation has no hole: two messages and one void, seq 1 to 3.
    let items = stack.snapshot().await;
    assert_eq!(stored_messages(&items, "acme", "team"), 3);
    assert_eq!(
        items[&keys("acme").name(|k| k.conversation(&conversation("team")))]["lastSeq"]
            .as_n()
            .unwrap(),
        "3"
    );
    let history = catch_up(stack, &bob).await;
    assert_eq!(seqs_of(&history), [1, 2, 3], "{history}");
    let voids: Vec<&Value> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["senderId"] == "stackpro.system")
        .collect();
    assert_eq!(voids.len(), 1, "{history}");
    assert_eq!(
        (&voids[0]["deleted"], &voids[0]["content"]["text"]),
        (&json!(true), &json!(""))
    );
    assert_ne!(voids[0]["seq"], a["seq"], "the void is not the stored copy");
    // The same client id from another user, or in another conversation, is another message.
    let (_, other) = stack.send(&bob, &frame).await;
    assert_eq!(
        (other["seq"].as_u64(), other.get("duplicate")),
        (Some(4), None),
        "{other}"
    );
    to_bob
}

/// Concurrent sends to one conversation each take their `seq` at the first try: one
/// reservation (UpdateItem) and one write each, however many race (an optimistic
/// read-then-conditional-write made them retry each other, O(N²)).
#[tokio::test]
async fn concurrent_sends_to_one_conversation_each_take_the_next_seq_at_the_first_try() {
    const SENDS: u64 = 24;
    let stack = TestStack::new().await;
    let (owner, _bob) = two_member_conversation(&stack, "acme").await;
    stack.dynamo_requests.reset();
    let sends = (0..SENDS).map(|i| {
        let frame = json!({ "type": "CHAT_MESSAGE", "conversationId": "team", "clientMessageId": format!("c-{i}"), "content": { "text": format!("message {i}") } });
        let (stack, owner) = (&stack, &owner);
        async move { stack.send(owner, &frame).await.1 }
    });
    let acks = futures_util::future::join_all(sends).await;
    let mut seqs: Vec<u64> = acks
        .iter()
        .map(|ack| {
            assert_eq!(ack["type"], "ACK", "{ack}");
            ack["seq"].as_u64().unwrap()
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=SENDS).collect::<Vec<_>>());
    let requests = stack.dynamo_requests.snapshot();
    eprintln!("DynamoDB requests of {SENDS} concurrent sends: {requests:?}");
    // Each: its number, its idempotency key, its message; no transaction, no void.
    assert_eq!(requests.get("UpdateItem"), Some(&SENDS), "{requests:?}");
    assert_eq!(requests.get("PutItem"), Some(&(2 * SENDS)), "{requests:?}");
    assert_eq!(requests.get("TransactWriteItems"), None, "{requests:?}");
}

/// A number taken by a send that died before writing its message (simulated: `lastSeq`
/// moved on, nothing written) is voided by the first reader of a page around it once no
/// send can still write it; before that, the page shows the hole as it is.
#[tokio::test]
async fn a_seq_taken_by_a_send_that_died_is_voided_by_a_reader_once_nobody_can_write_it() {
    let stack = TestStack::new().await;
    let (owner, bob) = two_member_conversation(&stack, "acme").await;
    assert_eq!(stack.send(&owner, &chat("team", "one")).await.1["seq"], 1);
    take_a_number(&stack).await;
    assert_eq!(stack.send(&owner, &chat("team", "three")).await.1["seq"], 3);

    // Now: seq 2's sender could still be writing it; the page leaves it alone.
    let (_, page) = stack
        .send(
            &bob,
            &json!({ "type": "GET_HISTORY", "conversationId": "team" }),
        )
        .await;
    assert_eq!(
        msgs(&page, "messages"),
        [(3, "three".into()), (1, "one".into())]
    );

    // A minute later nobody can: the reader voids it, and every later page has it.
    let table = &stack.route.table;
    let tenant = messaging_core::TenantId::parse("acme").unwrap();
    let later = messaging_core::time::now_millis() + messaging_aws::VOID_AFTER_MILLIS + 1_000;
    let page = table
        .message_page(
            &tenant,
            &conversation("team"),
            messaging_aws::MessageRange::NewestBefore(None),
            50,
            later,
        )
        .await
        .unwrap();
    let seen: Vec<(u64, bool, String)> = page
        .messages
        .iter()
        .map(|m| (m.seq, m.deleted, m.sender_id.to_string()))
        .collect();
    assert_eq!(
        seen,
        [
            (3, false, "owner".into()),
            (2, true, "stackpro.system".into()),
            (1, false, "owner".into())
        ]
    );
    let again = catch_up(&stack, &bob).await;
    assert_eq!(seqs_of(&again), [1, 2, 3], "{again}");
}

/// A send slower than the readers' patience finds its slot voided: it takes the next
/// number instead, and nothing is lost or overwritten.
#[tokio::test]
async fn a_send_whose_slot_was_voided_under_it_takes_the_next_seq() {
    let stack = TestStack::new().await;
    let (owner, bob) = two_member_conversation(&stack, "acme").await;
    assert_eq!(stack.send(&owner, &chat("team", "one")).await.1["seq"], 1);
    // The slot the next send will take is voided first (as a reader would, under a stalled
    // sender).
    let tenant = messaging_core::TenantId::parse("acme").unwrap();
    let now = messaging_core::time::now_millis();
    assert!(stack
        .route
        .table
        .void_seq(&tenant, &conversation("team"), 2, now)
        .await
        .unwrap());
    assert!(
        !stack
            .route
            .table
            .void_seq(&tenant, &conversation("team"), 1, now)
            .await
            .unwrap(),
        "a void never replaces a message"
    );
    let (_, ack) = stack.send(&owner, &chat("team", "two")).await;
    assert_eq!(
        (ack["type"].as_str(), ack["seq"].as_u64()),
        (Some("ACK"), Some(3)),
        "{ack}"
    );
    let history = catch_up(&stack, &bob).await;
    assert_eq!(
        msgs(&history, "messages"),
        [(1, "one".into()), (2, String::new()), (3, "two".into())]
    );
    assert_eq!(history["messages"][1]["deleted"], true);
}

/// A send that died after writing its idempotency key (the key names a number, the slot is
/// empty): the resend writes the message into that number. If a reader voided the number
/// meanwhile, the resend moves the key to a new one; later resends are duplicates of it.
#[tokio::test]
async fn a_resend_completes_a_send_that_died_after_its_key_or_moves_the_key_past_a_void() {
    let stack = TestStack::new().await;
    let (owner, bob) = two_member_conversation(&stack, "acme").await;
    assert_eq!(stack.send(&owner, &chat("team", "one")).await.1["seq"], 1);
    let tenant = messaging_core::TenantId::parse("acme").unwrap();
    // As a send that died would leave it: lastSeq moved on, its key written, no message.
    let died = |id: &'static str, seq: u64| {
        let stack = &stack;
        async move {
            take_a_number(stack).await;
            let key =
                keys("acme").key(|k| k.client_message(&conversation("team"), &user("owner"), id));
            let ttl = messaging_core::time::now_millis() / 1000 + 3600;
            stack
                .dynamodb
                .put_item()
                .table_name(&stack.table_name)
                .item("PK", AttributeValue::S(key.pk))
                .item("SK", AttributeValue::S(key.sk))
                .item("seq", AttributeValue::N(seq.to_string()))
                .item("ttl", AttributeValue::N(ttl.to_string()))
                .send()
                .await
                .unwrap();
        }
    };
    let frame = |id: &str, text: &str| json!({ "type": "CHAT_MESSAGE", "conversationId": "team", "clientMessageId": id, "content": { "text": text } });

    died("c-died", 2).await;
    stack.dynamo_requests.reset();
    let (_, ack) = stack.send(&owner, &frame("c-died", "completed")).await;
    assert_eq!(
        (ack["type"].as_str(), ack["seq"].as_u64()),
        (Some("ACK"), Some(2)),
        "{ack}"
    );
    assert!(ack.get("duplicate").is_none(), "{ack}");
    let requests = stack.dynamo_requests.snapshot();
    assert_eq!(
        requests.get("UpdateItem"),
        None,
        "no new number: {requests:?}"
    );

    died("c-late", 3).await;
    assert!(stack
        .route
        .table
        .void_seq(
            &tenant,
            &conversation("team"),
            3,
            messaging_core::time::now_millis()
        )
        .await
        .unwrap());
    let (_, moved) = stack.send(&owner, &frame("c-late", "moved on")).await;
    assert_eq!(
        (moved["type"].as_str(), moved["seq"].as_u64()),
        (Some("ACK"), Some(4)),
        "{moved}"
    );
    let (_, again) = stack.send(&owner, &frame("c-late", "moved on")).await;
    assert_eq!(
        (again["duplicate"].as_bool(), again["seq"].as_u64()),
        (Some(true), Some(4)),
        "{again}"
    );

    let history = catch_up(&stack, &bob).await;
    assert_eq!(
        msgs(&history, "messages"),
        [
            (1, "one".into()),
            (2, "completed".into()),
            (3, String::new()),
            (4, "moved on".into())
        ]
    );
}

#[tokio::test]
async fn a_reconnecting_client_receives_exactly_what_it_missed_in_order() {
    let stack = TestStack::new().await;
    let (owner, bob) = two_member_conversation(&stack, "acme").await;
    for text in ["one", "two"] {
        stack.send(&owner, &chat("team", text)).await;
    }
    stack.pump().await;
    let seen: Vec<u64> = frames_for(&stack.gateway.take(), &bob)
        .iter()
        .map(|f| f["data"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, [1, 2]);

    stack.disconnect(&bob).await;
    for text in ["three", "four", "five"] {
        let (_, ack) = stack.send(&owner, &chat("team", text)).await;
        assert_eq!(ack["type"], "ACK");
    }
    stack.pump().await;
    assert!(frames_for(&stack.gateway.take(), &bob).is_empty());

    let bob = stack.connect_as("acme", "bob", Role::User).await;
    let catch_up =
        json!({ "type": "GET_HISTORY", "conversationId": "team", "sinceSeq": 2, "limit": 2 });
    let (_, page) = stack.send(&bob, &catch_up).await;
    assert_eq!(page["order"], "oldestFirst");
    assert_eq!(
        msgs(&page, "messages"),
        [(3, "three".into()), (4, "four".into())]
    );
    let cursor = page["nextCursor"]
        .as_str()
        .expect("more to come")
        .to_owned();
    let (_, rest) = stack
        .send(&bob, &json!({ "type": "GET_HISTORY", "conversationId": "team", "sinceSeq": 2, "limit": 2, "cursor": cursor }))
        .await;
    assert_eq!(msgs(&rest, "messages"), [(5, "five".into())]);
    assert!(rest.get("nextCursor").is_none(), "{rest}");
    // Up to date: nothing after 5.
    let (_, none) = stack
        .send(
            &bob,
            &json!({ "type": "GET_HISTORY", "conversationId": "team", "sinceSeq": 5 }),
        )
        .await;
    assert_eq!(msgs(&none, "messages"), []);
}

#[tokio::test]
async fn history_pages_newest_first_and_refuses_altered_or_foreign_cursors() {
    let stack = TestStack::new().await;
    let (owner, bob) = two_member_conversation(&stack, "acme").await;
    let carol = stack.connect_as("acme", "carol", Role::User).await;
    stack
        .send(
            &owner,
            &json!({ "type": "ADD_MEMBERS", "conversationId": "team", "members": ["carol"] }),
        )
        .await;
    for i in 1..=5 {
        stack.send(&owner, &chat("team", &format!("m{i}"))).await;
    }
    let page = |cursor: Option<&str>| {
        let mut frame = json!({ "type": "GET_HISTORY", "conversationId": "team", "limit": 2 });
        if let Some(c) = cursor {
            frame["cursor"] = json!(c);
        }
        frame
    };
    let (_, p1) = stack.send(&bob, &page(None)).await;
    assert_eq!(p1["order"], "newestFirst");
    assert_eq!(msgs(&p1, "messages"), [(5, "m5".into()), (4, "m4".into())]);
    assert_eq!(p1["members"].as_array().unwrap().len(), 3);
    let c1 = p1["nextCursor"].as_str().unwrap();
    let (_, p2) = stack.send(&bob, &page(Some(c1))).await;
    assert_eq!(msgs(&p2, "messages"), [(3, "m3".into()), (2, "m2".into())]);
    let (_, p3) = stack.send(&bob, &page(p2["nextCursor"].as_str())).await;
    assert_eq!(msgs(&p3, "messages"), [(1, "m1".into())]);
    assert!(p3.get("nextCursor").is_none());

    // Altered: one character of the signed position changed.
    let mut altered = c1.to_owned().into_bytes();
    altered[3] = if altered[3] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    // Foreign: another member's cursor, the same cursor for another request.
    let other_conversation =
        json!({ "type": "GET_HISTORY", "conversationId": "team", "sinceSeq": 0, "cursor": c1 });
    for (who, frame) in [
        (&bob, page(Some(&altered))),
        (&carol, page(Some(c1))),
        (&bob, other_conversation),
        (&bob, page(Some("not-a-cursor"))),
    ] {
        let (status, refused) = stack.send(who, &frame).await;
        assert_eq!(
            (status, refused["code"].as_str()),
            (400, Some("INVALID_CURSOR")),
            "{refused}"
        );
    }
    // Another tenant with the same conversation id never reaches the cursor check.
    let stranger = stack.connect_as("globex", "bob", Role::Owner).await;
    let (_, refused) = stack.send(&stranger, &page(Some(c1))).await;
    assert_eq!(refused["code"], "CONVERSATION_NOT_FOUND");
}

#[tokio::test]
async fn edits_deletes_reactions_and_thread_replies_are_fanned_out_as_their_own_events() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let admin = stack.connect_as("acme", "admin", Role::Admin).await;
    let bob = stack.connect_as("acme", "bob", Role::User).await;
    let alice = stack.connect_as("acme", "alice", Role::User).await;
    stack
        .send(
            &owner,
            &create("team", "project", &["admin", "bob", "alice"]),
        )
        .await;
    let (_, ack) = stack
        .send(&bob, &chat("team", "draft of the contract"))
        .await;
    assert_eq!(ack["seq"], 1);
    stack.pump().await;
    stack.gateway.take();
    let target = |kind: &str, extra: Value| {
        let mut frame = json!({ "type": kind, "conversationId": "team", "seq": 1 });
        frame
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        frame
    };
    let code = |frame: &Value| {
        frame["code"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| frame["type"].as_str().unwrap().to_owned())
    };

    // Reactions: the seed's emoji → users map.
    assert_eq!(
        code(
            &stack
                .send(&alice, &target("ADD_REACTION", json!({ "emoji": "👍" })))
                .await
                .1
        ),
        "ACK"
    );
    assert_eq!(
        code(
            &stack
                .send(&owner, &target("ADD_REACTION", json!({ "emoji": "👍" })))
                .await
                .1
        ),
        "ACK"
    );
    assert_eq!(
        code(
            &stack
                .send(&owner, &target("ADD_REACTION", json!({ "emoji": "❤️" })))
                .await
                .1
        ),
        "ACK"
    );
    assert_eq!(
        code(
            &stack
                .send(&owner, &target("REMOVE_REACTION", json!({ "emoji": "❤️" })))
                .await
                .1
        ),
        "ACK"
    );
    // Editing: the author only.
    let before = stack.snapshot().await;
    for who in [&alice, &admin, &owner] {
        let (status, refused) = stack
            .send(
                who,
                &target("EDIT_MESSAGE", json!({ "content": { "text": "hijacked" } })),
            )
            .await;
        assert_eq!(
            (status, code(&refused)),
            (403, "FORBIDDEN".into()),
            "{refused}"
        );
    }
    assert_eq!(
        stack.snapshot().await,
        before,
        "refused edits wrote nothing"
    );
    assert_eq!(
        code(
            &stack
                .send(
                    &bob,
                    &target(
                        "EDIT_MESSAGE",
                        json!({ "content": { "text": "final contract" } })
                    )
                )
                .await
                .1
        ),
        "ACK"
    );
    // A thread reply (posted by route itself: the queued events above go first).
    stack.pump().await;
    let reply = json!({ "type": "CHAT_MESSAGE", "conversationId": "team", "parentSeq": 1, "content": { "text": "looks good" } });
    let (_, reply_ack) = stack.send(&alice, &reply).await;
    assert_eq!(reply_ack["seq"], 2, "{reply_ack}");

    stack.pump().await;
    let to_bob = frames_for(&stack.gateway.take(), &bob);
    let kinds: Vec<&str> = to_bob.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "REACTIONS_CHANGED",
            "REACTIONS_CHANGED",
            "REACTIONS_CHANGED",
            "REACTIONS_CHANGED",
            "THREAD_REPLY"
        ],
        "{to_bob:?}"
    );
    assert_eq!(to_bob[3]["reactions"], json!({ "👍": ["alice", "owner"] }));
    assert_eq!(to_bob[4]["threadCount"], 1);
    assert_eq!(to_bob[4]["data"]["parentSeq"], 1);
    let to_alice = frames_for(&stack.gateway.take(), &alice);
    assert!(to_alice.is_empty());

    let (_, thread) = stack
        .send(
            &owner,
            &json!({ "type": "GET_THREAD", "conversationId": "team", "seq": 1 }),
        )
        .await;
    assert_eq!(thread["parent"]["content"]["text"], "final contract");
    assert_eq!(thread["parent"]["edited"], true);
    assert!(thread["parent"]["editedAt"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(thread["parent"]["threadCount"], 1);
    assert_eq!(msgs(&thread, "replies"), [(2, "looks good".into())]);
    // A reply to a reply, or to nothing, is refused.
    for parent in [2, 99] {
        let mut frame = reply.clone();
        frame["parentSeq"] = json!(parent);
        assert_eq!(
            code(&stack.send(&alice, &frame).await.1),
            "MESSAGE_NOT_FOUND"
        );
    }

    // Deleting: the author, or OWNER (canDeleteMessages); not ADMIN, not another USER.
    for who in [&alice, &admin] {
        assert_eq!(
            code(
                &stack
                    .send(who, &target("DELETE_MESSAGE", json!({})))
                    .await
                    .1
            ),
            "FORBIDDEN"
        );
    }
    assert_eq!(
        code(
            &stack
                .send(&owner, &target("DELETE_MESSAGE", json!({})))
                .await
                .1
        ),
        "ACK"
    );
    stack.pump().await;
    let deleted = frames_for(&stack.gateway.take(), &bob);
    assert_eq!(deleted.len(), 1);
    assert_eq!(
        (
            deleted[0]["type"].as_str(),
            deleted[0]["deletedBy"].as_str()
        ),
        (Some("MESSAGE_DELETED"), Some("owner"))
    );
    // A tombstone keeps its place; it can no longer change or take replies.
    let (_, history) = stack
        .send(
            &bob,
            &json!({ "type": "GET_HISTORY", "conversationId": "team" }),
        )
        .await;
    let tombstone = &history["messages"][1];
    assert_eq!(
        (
            tombstone["seq"].as_u64(),
            tombstone["deleted"].as_bool(),
            tombstone["content"]["text"].as_str()
        ),
        (Some(1), Some(true), Some(""))
    );
    assert_eq!(
        code(
            &stack
                .send(
                    &bob,
                    &target("EDIT_MESSAGE", json!({ "content": { "text": "x" } }))
                )
                .await
                .1
        ),
        "MESSAGE_NOT_FOUND"
    );
    assert_eq!(
        code(
            &stack
                .send(&bob, &target("ADD_REACTION", json!({ "emoji": "👍" })))
                .await
                .1
        ),
        "MESSAGE_NOT_FOUND"
    );
    assert_eq!(
        code(&stack.send(&alice, &reply).await.1),
        "MESSAGE_NOT_FOUND"
    );
}

#[tokio::test]
async fn a_conversation_stored_before_sequence_numbers_existed_starts_at_seq_1() {
    let stack = TestStack::new().await;
    let (owner, _bob) = two_member_conversation(&stack, "acme").await;
    // As an older deployment wrote it: no lastSeq attribute.
    change_team_conversation(&stack, "REMOVE lastSeq", None).await;
    let (_, ack) = stack.send(&owner, &chat("team", "still works")).await;
    assert_eq!(
        (ack["type"].as_str(), ack["seq"].as_u64()),
        (Some("ACK"), Some(1)),
        "{ack}"
    );
    let (_, next) = stack.send(&owner, &chat("team", "and counts on")).await;
    assert_eq!(next["seq"], 2);
}
