//! `$default` (message routing) against moto: every accepted action and every refusal.

use messaging_core::protocol::MAX_FRAME_BYTES;
use messaging_core::Role;
use serde_json::{json, Value};
use test_support::{
    connection, connection_key, conversation, create, frames_for, item_name, keys, user, TestStack,
};

fn chat(conversation: &str, text: &str) -> Value {
    json!({ "type": "CHAT_MESSAGE", "requestId": "r1", "conversationId": conversation, "content": { "text": text, "type": "text" } })
}

#[tokio::test]
async fn a_chat_message_is_stored_queued_and_acknowledged() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("123", "owner", Role::Owner).await;
    let client = stack.connect_as("123", "carol", Role::User).await;
    let (status, ack) = stack
        .send(&owner, &create("456", "project", &["carol"]))
        .await;
    assert_eq!((status, ack["type"].as_str()), (200, Some("ACK")), "{ack}");
    assert_eq!(ack["action"], "CREATE_CONVERSATION");

    let (status, ack) = stack
        .send(&client, &chat("456", "Here are the updated contracts"))
        .await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(ack["type"], "ACK");
    assert_eq!(ack["requestId"], "r1");
    let message_id = ack["messageId"].as_str().unwrap().to_owned();
    assert_eq!(
        ack["seq"], 1,
        "the first message of a conversation is seq 1"
    );
    assert!(ack["timestamp"].as_str().unwrap().ends_with('Z'));

    let items = stack.snapshot().await;
    let stored = &items[&keys("123").name(|k| k.message(&conversation("456"), 1))];
    assert_eq!(stored["messageId"].as_s().unwrap(), &message_id);
    assert_eq!(stored["senderId"].as_s().unwrap(), "carol");
    assert_eq!(
        stored["content"].as_m().unwrap()["text"].as_s().unwrap(),
        "Here are the updated contracts"
    );
    assert!(
        !stored.contains_key("userId"),
        "no UserIndex copy of the message: nothing reads it"
    );
    assert_eq!(stored["edited"].as_bool().unwrap(), &false);
    let conversation = &items[&keys("123").name(|k| k.conversation(&conversation("456")))];
    assert_eq!(
        conversation["lastActivity"].as_s().unwrap(),
        ack["timestamp"].as_str().unwrap()
    );
    assert_eq!(conversation["lastSeq"].as_n().unwrap(), "1");
    assert_eq!(
        conversation["channel"].as_s().unwrap(),
        "client:123:project:456"
    );

    stack.pump().await;
    let deliveries = stack.gateway.take();
    let to_owner = frames_for(&deliveries, &owner);
    let new_message = to_owner
        .iter()
        .find(|f| f["type"] == "NEW_MESSAGE")
        .expect("owner got NEW_MESSAGE");
    assert_eq!(new_message["data"]["messageId"], message_id.as_str());
    assert_eq!(new_message["data"]["senderName"], "carol of 123");
    assert!(
        frames_for(&deliveries, &client)
            .iter()
            .all(|f| f["type"] != "NEW_MESSAGE"),
        "the sender has its ACK"
    );
}

#[tokio::test]
async fn every_malformed_frame_gets_its_error_code_and_writes_nothing() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("123", "owner", Role::Owner).await;
    stack.send(&owner, &create("456", "project", &[])).await;
    stack.pump().await;
    let before = stack.snapshot().await;
    let queued_before = stack.queued(&stack.queue_url).await;

    let huge = "x".repeat(MAX_FRAME_BYTES + 1);
    let cases: Vec<(String, &str, i64)> = vec![
        ("{not json".into(), "INVALID_JSON", 400),
        ("[]".into(), "INVALID_JSON", 400),
        (json!({ "conversationId": "456" }).to_string(), "MISSING_TYPE", 400),
        (json!({ "type": "DROP_TABLE" }).to_string(), "UNKNOWN_TYPE", 400),
        (json!({ "type": "CHAT_MESSAGE", "conversationId": "456" }).to_string(), "INVALID_FIELD", 400),
        (json!({ "type": "CHAT_MESSAGE", "content": { "text": "hi" } }).to_string(), "INVALID_FIELD", 400),
        (chat("bad#id", "hi").to_string(), "INVALID_FIELD", 400),
        (chat("456", "   ").to_string(), "INVALID_FIELD", 400),
        (chat("456", &huge).to_string(), "MESSAGE_TOO_LARGE", 413),
        (json!({ "type": "CHAT_MESSAGE", "channel": "client:999:project:456", "content": { "text": "hi" } }).to_string(), "CROSS_TENANT", 403),
        (json!({ "type": "TYPING_START", "channel": "client:999:project:456" }).to_string(), "CROSS_TENANT", 403),
        (chat("nope", "hi").to_string(), "CONVERSATION_NOT_FOUND", 404),
        (create("456", "project", &[]).to_string(), "CONVERSATION_EXISTS", 409),
        (json!({ "type": "JOIN_CONVERSATION", "conversationId": "ghost" }).to_string(), "CONVERSATION_NOT_FOUND", 404),
    ];
    for (body, code, status) in cases {
        let (got_status, frame) = stack.send_raw(&owner, &body).await;
        let shown = if body.len() > 80 { &body[..80] } else { &body };
        assert_eq!(frame["type"], "ERROR", "{shown}");
        assert_eq!(frame["code"], code, "{shown}: {frame}");
        assert_eq!(got_status, status, "{shown}");
        let message = frame["message"].as_str().unwrap();
        assert!(!message.is_empty());
        assert!(
            !message.contains("Id(\""),
            "debug syntax leaked into {message:?}"
        );
        assert_eq!(frame["retryable"], false);
    }
    assert_eq!(
        stack.snapshot().await,
        before,
        "a refused frame wrote something"
    );
    assert_eq!(
        stack.queued(&stack.queue_url).await,
        queued_before,
        "a refused frame queued something"
    );
}

#[tokio::test]
async fn a_request_id_is_echoed_even_when_the_frame_is_refused() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("123", "owner", Role::Owner).await;
    let (_, frame) = stack
        .send(&owner, &json!({ "type": "NOPE", "requestId": "abc-1" }))
        .await;
    assert_eq!(frame["requestId"], "abc-1");
}

#[tokio::test]
async fn an_unknown_connection_is_told_to_reconnect() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("123", "owner", Role::Owner).await;
    stack.disconnect(&owner).await;
    let (status, frame) = stack.send(&owner, &chat("456", "hi")).await;
    assert_eq!(
        (status, frame["code"].as_str()),
        (401, Some("UNKNOWN_CONNECTION"))
    );
}

#[tokio::test]
async fn ping_is_acknowledged_touches_nothing_and_tells_a_dropped_connection_to_reconnect() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("123", "owner", Role::Owner).await;
    let before = stack.snapshot().await;
    let (status, ack) = stack
        .send(&owner, &json!({ "type": "PING", "requestId": "k-1" }))
        .await;
    assert_eq!(status, 200, "{ack}");
    assert_eq!(
        (
            ack["type"].as_str(),
            ack["action"].as_str(),
            ack["requestId"].as_str()
        ),
        (Some("ACK"), Some("PING"), Some("k-1"))
    );
    stack.pump().await;
    assert!(stack.gateway.take().is_empty(), "a PING reaches no one");
    assert_eq!(stack.snapshot().await, before, "a PING writes nothing");
    // A connection the table no longer has (route reads a caller's registration once per
    // sandbox and minute, so this one has not been read yet).
    let gone = stack.connect_as("123", "carol", Role::User).await;
    stack.disconnect(&gone).await;
    let (status, frame) = stack
        .send(&gone, &json!({ "type": "PING", "requestId": "k-2" }))
        .await;
    assert_eq!(
        (status, frame["code"].as_str(), frame["requestId"].as_str()),
        (401, Some("UNKNOWN_CONNECTION"), Some("k-2"))
    );
}

#[tokio::test]
async fn role_rules_govern_creating_and_joining() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("123", "owner", Role::Owner).await;
    let admin = stack.connect_as("123", "admin", Role::Admin).await;
    let user = stack.connect_as("123", "user", Role::User).await;

    // USER cannot create (canCreateChannels) — nothing written.
    let before = stack.snapshot().await;
    let (status, frame) = stack.send(&user, &create("u1", "general", &[])).await;
    assert_eq!((status, frame["code"].as_str()), (403, Some("FORBIDDEN")));
    assert!(frame["message"]
        .as_str()
        .unwrap()
        .contains("canCreateChannels"));
    assert_eq!(stack.snapshot().await, before);

    // OWNER and ADMIN can.
    assert_eq!(
        stack
            .send(&owner, &create("general", "general", &[]))
            .await
            .1["type"],
        "ACK"
    );
    assert_eq!(
        stack
            .send(&admin, &create("project-1", "project", &[]))
            .await
            .1["type"],
        "ACK"
    );

    // Anyone may join a general conversation; a USER may not self-join a project.
    let join =
        |c: &str| json!({ "type": "JOIN_CONVERSATION", "requestId": "j", "conversationId": c });
    assert_eq!(stack.send(&user, &join("general")).await.1["type"], "ACK");
    let before = stack.snapshot().await;
    let (status, frame) = stack.send(&user, &join("project-1")).await;
    assert_eq!(
        (status, frame["code"].as_str()),
        (403, Some("FORBIDDEN")),
        "{frame}"
    );
    assert_eq!(stack.snapshot().await, before);
    // ...and cannot post into it.
    let (_, frame) = stack.send(&user, &chat("project-1", "let me in")).await;
    assert_eq!(frame["code"], "NOT_A_MEMBER");
    assert_eq!(stack.snapshot().await, before);

    // An OWNER may join it (canInviteUsers); joining twice is harmless.
    assert_eq!(
        stack.send(&owner, &join("project-1")).await.1["type"],
        "ACK"
    );
    assert_eq!(
        stack.send(&owner, &join("project-1")).await.1["type"],
        "ACK"
    );
    // The channel form names the same conversation.
    let by_channel = json!({ "type": "CHAT_MESSAGE", "channel": "client:123:project:project-1", "content": { "text": "hello" } });
    assert_eq!(stack.send(&owner, &by_channel).await.1["type"], "ACK");
}

#[tokio::test]
async fn typing_indicators_fan_out_with_an_expiry_and_are_never_stored() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("123", "owner", Role::Owner).await;
    let carol = stack.connect_as("123", "carol", Role::User).await;
    stack
        .send(&owner, &create("456", "project", &["carol"]))
        .await;
    stack.pump().await;
    stack.gateway.take();
    let before = stack.snapshot().await;

    // Delivered one at a time: the start with its expiry, then the stop. (Waiting together
    // in one batch, the stop alone would go: typing is a state, broadcast's collapse.)
    let (status, frame) = stack
        .send(
            &carol,
            &json!({ "type": "TYPING_START", "conversationId": "456" }),
        )
        .await;
    assert_eq!((status, frame), (200, Value::Null), "typing gets no ACK");
    stack.pump().await;
    stack
        .send(
            &carol,
            &json!({ "type": "TYPING_STOP", "conversationId": "456" }),
        )
        .await;
    assert_eq!(stack.snapshot().await, before, "typing wrote to the table");
    stack.pump().await;
    let to_owner = frames_for(&stack.gateway.take(), &owner);
    assert_eq!(to_owner.len(), 2, "{to_owner:?}");
    assert_eq!(to_owner[0]["type"], "TYPING_START");
    assert_eq!(to_owner[0]["userId"], "carol");
    let expires = to_owner[0]["expiresAt"].as_i64().unwrap();
    let ttl = expires - messaging_core::time::now_millis();
    assert!(ttl > 0 && ttl <= 10_000, "expiresAt is {ttl} ms away");
    assert_eq!(to_owner[1]["type"], "TYPING_STOP");
}

#[tokio::test]
async fn disconnect_removes_every_subscription_of_the_connection() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("123", "owner", Role::Owner).await;
    for c in ["a", "b", "c"] {
        stack.send(&owner, &create(c, "project", &[])).await;
    }
    let reconnected = stack.connect_as("123", "owner", Role::Owner).await;
    // A connection's items: its subscriptions and its user's connection item.
    let subscriptions = |items: &std::collections::BTreeMap<String, _>, id: &str| {
        let k = keys("123");
        let mut own = vec![k.name(|k| k.user_connection(&user("owner"), &connection(id)))];
        own.extend(
            ["a", "b", "c"]
                .map(|c| k.name(|k| k.subscription(&conversation(c), 0, &connection(id)))),
        );
        items
            .keys()
            .filter(|key: &&String| own.contains(key))
            .count()
    };
    let items = stack.snapshot().await;
    // The conversations the owner created before reconnecting are subscribed at connect.
    assert_eq!(
        subscriptions(&items, reconnected.connection.as_str()),
        4,
        "3 subscriptions + the user's connection item"
    );
    stack.disconnect(&reconnected).await;
    stack.disconnect(&owner).await;
    let items = stack.snapshot().await;
    // Nothing of any connection is left: no registry, no user connection, no subscription.
    let k = keys("123");
    let mut prefixes = vec![k.prefix(|k| k.user_connections_prefix(&user("owner")))];
    prefixes.extend(["a", "b", "c"].map(|c| {
        k.value(|k| {
            format!(
                "{}|{}",
                k.subscriptions_pk(&conversation(c), 0),
                messaging_aws::table::SUBSCRIPTION_PREFIX
            )
        })
    }));
    for client in [&owner, &reconnected] {
        prefixes.push(item_name(&connection_key(client.connection.as_str())));
    }
    assert!(
        items
            .keys()
            .all(|key| prefixes.iter().all(|p| !key.starts_with(p))),
        "{:?}",
        items.keys()
    );
}

#[tokio::test]
async fn list_conversations_returns_mine_most_recently_active_first() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("123", "owner", Role::Owner).await;
    let carol = stack.connect_as("123", "carol", Role::User).await;
    for (id, members) in [
        ("alpha", vec!["carol"]),
        ("beta", vec![]),
        ("gamma", vec!["carol"]),
    ] {
        assert_eq!(
            stack.send(&owner, &create(id, "project", &members)).await.1["type"],
            "ACK"
        );
    }
    stack.send(&owner, &chat("alpha", "bump alpha")).await;

    let list = json!({ "type": "LIST_CONVERSATIONS", "requestId": "l1" });
    let (_, frame) = stack.send(&carol, &list).await;
    assert_eq!(frame["type"], "CONVERSATIONS");
    assert_eq!(frame["requestId"], "l1");
    let ids: Vec<&str> = frame["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["conversationId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alpha", "gamma"], "carol's only, most recent first");
    let (_, frame) = stack.send(&owner, &list).await;
    assert_eq!(frame["conversations"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn history_returns_newest_first_with_member_presence_and_only_to_members() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("123", "owner", Role::Owner).await;
    let carol = stack.connect_as("123", "carol", Role::User).await;
    let outsider = stack.connect_as("123", "dave", Role::User).await;
    stack
        .send(&owner, &create("456", "project", &["carol", "erin"]))
        .await;
    for i in 1..=3 {
        stack.send(&carol, &chat("456", &format!("m{i}"))).await;
    }
    let history =
        json!({ "type": "GET_HISTORY", "requestId": "h", "conversationId": "456", "limit": 2 });
    let (_, frame) = stack.send(&owner, &history).await;
    assert_eq!(frame["type"], "HISTORY", "{frame}");
    let texts: Vec<&str> = frame["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["m3", "m2"]);
    assert_eq!(
        frame["members"],
        json!([
            { "userId": "carol", "status": "online" },
            { "userId": "erin", "status": "offline" },
            { "userId": "owner", "status": "online" }
        ])
    );
    let (status, frame) = stack.send(&outsider, &history).await;
    assert_eq!(
        (status, frame["code"].as_str()),
        (403, Some("NOT_A_MEMBER"))
    );
}

/// A sandbox reads a connection's record once a minute, not once a frame; the send's first
/// look at its client message id is eventually consistent (half a read unit).
#[tokio::test]
async fn a_connections_record_is_read_once_per_sandbox_and_minute_not_per_frame() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("123", "owner", Role::Owner).await;
    let (_, ack) = stack.send(&owner, &create("456", "project", &[])).await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    // The create read the record; the sends do not.
    stack.dynamo_requests.reset();
    for i in 0..3 {
        let frame = json!({ "type": "CHAT_MESSAGE", "conversationId": "456",
            "clientMessageId": format!("c-{i}"), "content": { "text": format!("m{i}") } });
        assert_eq!(stack.send(&owner, &frame).await.1["type"], "ACK");
    }
    let gets = stack.dynamo_requests.snapshot()["GetItem"];
    // Each send: membership (consistent) and client message id (eventually consistent).
    assert_eq!(gets, 6, "{:?}", stack.dynamo_requests.snapshot());
    assert_eq!(
        stack.dynamo_requests.eventually_consistent().get("GetItem"),
        Some(&3)
    );
    assert_eq!(stack.route.callers.len(), 1);
    // Another sandbox (a fresh service) reads it once, then keeps it too.
    let other = messaging_handlers::services::Services::new(&stack.parts).route;
    stack.dynamo_requests.reset();
    let event = test_support::events::message(
        owner.connection.as_str(),
        &json!({ "type": "LIST_CONVERSATIONS" }).to_string(),
    );
    messaging_handlers::route::handle(&other, &event).await;
    let first = stack.dynamo_requests.snapshot().get("GetItem").copied();
    stack.dynamo_requests.reset();
    messaging_handlers::route::handle(&other, &event).await;
    let second = stack.dynamo_requests.snapshot().get("GetItem").copied();
    // The record and the tenant's rate limits, each once a minute per sandbox.
    assert_eq!((first, second), (Some(2), None));
}
