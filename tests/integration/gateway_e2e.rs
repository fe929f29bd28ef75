//! End to end through the local gateway: real WebSocket clients, the real functions, the SQS
//! event source mapping and the `@connections` API, on moto.

use std::time::Duration;

use messaging_core::Role;
use serde_json::{json, Value};
use test_support::gateway::{management_client, GatewayStack, WsClient};
use test_support::{chat, create, keys, texts, user};

const QUIET: Duration = Duration::from_millis(1500);

async fn ack(client: &mut WsClient, frame: &Value) -> Value {
    client.send(frame).await;
    let answer = client.expect_answer().await;
    assert_eq!(answer["type"], "ACK", "{frame} was answered with {answer}");
    answer
}

#[tokio::test]
async fn members_receive_each_message_once_and_nobody_else_does() {
    let gw = GatewayStack::start().await;
    let mut a_owner = gw.connect("acme", "owner", Role::Owner).await;
    let mut a_bob = gw.connect("acme", "bob", Role::User).await;
    let mut a_carol = gw.connect("acme", "carol", Role::User).await;
    let mut g_owner = gw.connect("globex", "owner", Role::Owner).await;
    let mut g_bob = gw.connect("globex", "bob", Role::User).await;

    ack(&mut a_owner, &create("project-1", "project", &["bob"])).await;
    ack(&mut g_owner, &create("project-1", "project", &["bob"])).await;
    for c in [
        &mut a_owner,
        &mut a_bob,
        &mut a_carol,
        &mut g_owner,
        &mut g_bob,
    ] {
        c.drain(Duration::from_millis(700)).await;
    }

    ack(&mut a_owner, &chat("project-1", "acme to bob")).await;
    ack(&mut g_bob, &chat("project-1", "globex bob to owner")).await;

    assert_eq!(texts(&a_bob.drain(QUIET).await), ["acme to bob"]);
    assert_eq!(texts(&g_owner.drain(QUIET).await), ["globex bob to owner"]);
    assert!(
        texts(&a_carol.drain(QUIET).await).is_empty(),
        "carol is no member"
    );
    assert!(
        texts(&g_bob.drain(QUIET).await).is_empty(),
        "the sender's own socket only gets the ACK"
    );
    assert!(texts(&a_owner.drain(QUIET).await).is_empty());

    // The foreign channel is refused over the socket too.
    a_carol.send(&json!({ "type": "CHAT_MESSAGE", "channel": "client:globex:project:project-1", "content": { "text": "x" } })).await;
    let refused = a_carol.expect_answer().await;
    assert_eq!(refused["code"], "CROSS_TENANT");
    gw.stop().await;
}

#[tokio::test]
async fn typing_indicators_are_delivered_with_their_expiry() {
    let gw = GatewayStack::start().await;
    let mut owner = gw.connect("123", "owner", Role::Owner).await;
    let mut carol = gw.connect("123", "carol", Role::User).await;
    ack(&mut owner, &create("456", "project", &["carol"])).await;
    carol.drain(Duration::from_millis(700)).await;

    owner
        .send(&json!({ "type": "TYPING_START", "conversationId": "456" }))
        .await;
    let typing = carol.expect("TYPING_START").await;
    assert_eq!(typing["userId"], "owner");
    let left = typing["expiresAt"].as_i64().unwrap() - messaging_core::time::now_millis();
    assert!(left > 5_000 && left <= 10_000, "expires in {left} ms");
    owner
        .send(&json!({ "type": "TYPING_STOP", "conversationId": "456" }))
        .await;
    assert_eq!(carol.expect("TYPING_STOP").await["userId"], "owner");
    gw.stop().await;
}

#[tokio::test]
async fn closing_a_socket_removes_it_and_reconnecting_catches_up() {
    let gw = GatewayStack::start().await;
    let mut owner = gw.connect("123", "owner", Role::Owner).await;
    let bob = gw.connect("123", "bob", Role::User).await;
    ack(&mut owner, &create("team", "project", &["bob"])).await;
    let bob_connection = {
        // The registry knows bob's socket; closing it runs $disconnect and removes it.
        let items = gw.stack.snapshot().await;
        items
            .keys()
            .filter(|k| {
                k.starts_with(&keys("123").prefix(|k| k.user_connections_prefix(&user("bob"))))
            })
            .count()
    };
    assert_eq!(bob_connection, 1);
    bob.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let items = gw.stack.snapshot().await;
    assert!(
        !items.keys().any(
            |k| k.starts_with(&keys("123").prefix(|k| k.user_connections_prefix(&user("bob"))))
        ),
        "bob's connection was not removed"
    );
    assert_eq!(
        items[&keys("123").name(|k| k.user(&user("bob")))]["presence"]
            .as_s()
            .unwrap(),
        "offline"
    );

    ack(&mut owner, &chat("team", "while you were away")).await;
    let mut bob = gw.connect("123", "bob", Role::User).await;
    bob.send(&json!({ "type": "GET_HISTORY", "conversationId": "team" }))
        .await;
    let history = bob.expect("HISTORY").await;
    assert_eq!(
        history["messages"][0]["content"]["text"],
        "while you were away"
    );
    ack(&mut owner, &chat("team", "welcome back")).await;
    assert_eq!(texts(&bob.drain(QUIET).await), ["welcome back"]);
    gw.stop().await;
}

#[tokio::test]
async fn a_connection_that_vanished_without_disconnect_is_pruned_on_410() {
    let gw = GatewayStack::start().await;
    let mut owner = gw.connect("123", "owner", Role::Owner).await;
    let mut carol = gw.connect("123", "carol", Role::User).await;
    ack(&mut owner, &create("team", "project", &["carol"])).await;
    // A record for a socket the gateway does not have (as after a lost $disconnect).
    let ghost = gw.stack.connect_long_ago("123", "carol", Role::User).await;
    carol.drain(Duration::from_millis(500)).await;

    ack(&mut owner, &chat("team", "anyone?")).await;
    assert_eq!(texts(&carol.drain(QUIET).await), ["anyone?"]);
    let items = gw.stack.snapshot().await;
    assert!(
        !items.keys().any(|k| k.contains(ghost.connection.as_str())),
        "the ghost was not pruned"
    );
    assert!(
        items
            .keys()
            .any(|k| k
                .starts_with(&keys("123").prefix(|k| k.user_connections_prefix(&user("carol"))))),
        "the live socket stays"
    );
    gw.stop().await;
}

#[tokio::test]
async fn presence_events_reach_the_conversation_live() {
    let gw = GatewayStack::start().await;
    let mut owner = gw.connect("123", "owner", Role::Owner).await;
    ack(&mut owner, &create("team", "project", &["dave"])).await;
    owner.drain(Duration::from_millis(500)).await;
    let mut dave = gw.connect("123", "dave", Role::User).await;
    let online = owner.expect("PRESENCE").await;
    assert_eq!(
        (online["userId"].as_str(), online["status"].as_str()),
        (Some("dave"), Some("online"))
    );
    let to_dave = dave.drain(Duration::from_millis(500)).await;
    assert!(
        to_dave.iter().all(|f| f["type"] != "PRESENCE"),
        "dave is not told he came online: {to_dave:?}"
    );
    dave.close().await;
    let offline = owner.expect("PRESENCE").await;
    assert_eq!(offline["status"], "offline");
    gw.stop().await;
}

#[tokio::test]
async fn collaboration_over_real_sockets_file_routes_reach_file_share_and_catch_up_replays_what_was_missed(
) {
    let gw = GatewayStack::start().await;
    let mut olga = gw.connect("acme", "olga", Role::Owner).await;
    let mut bob = gw.connect("acme", "bob", Role::User).await;
    ack(&mut olga, &create("deal", "project", &["bob"])).await;
    bob.drain(Duration::from_millis(700)).await;

    // A reaction and an edit arrive as their own events.
    let sent = ack(&mut bob, &chat("deal", "draft terms")).await;
    assert_eq!(sent["seq"], 1);
    olga.expect("NEW_MESSAGE").await;
    ack(
        &mut olga,
        &json!({ "type": "ADD_REACTION", "conversationId": "deal", "seq": 1, "emoji": "👍" }),
    )
    .await;
    assert_eq!(
        bob.expect("REACTIONS_CHANGED").await["reactions"],
        json!({ "👍": ["olga"] })
    );
    ack(&mut bob, &json!({ "type": "EDIT_MESSAGE", "conversationId": "deal", "seq": 1, "content": { "text": "final terms" } })).await;
    let edited = olga.expect("MESSAGE_EDITED").await;
    assert_eq!(
        (
            edited["data"]["content"]["text"].as_str(),
            edited["data"]["edited"].as_bool()
        ),
        (Some("final terms"), Some(true))
    );

    // File frames are routed by type to the file-share function, two-way.
    olga.send(&json!({ "type": "REGISTER_FILE", "fileId": "terms", "name": "terms.pdf", "size": 100, "mimeType": "application/pdf" })).await;
    assert_eq!(olga.expect("FILE").await["file"]["owner"], "olga");
    ack(&mut olga, &json!({ "type": "SHARE_FILE", "fileId": "terms", "userId": "bob", "permissions": { "comment": true } })).await;
    assert_eq!(bob.expect("FILE_SHARED").await["sharedBy"], "olga");
    ack(&mut bob, &json!({ "type": "FILE_COMMENT", "fileId": "terms", "content": "Clause 4?", "position": { "page": 1, "x": 0.1, "y": 0.2 } })).await;
    assert_eq!(
        olga.expect("FILE_COMMENT").await["comment"]["content"],
        "Clause 4?"
    );

    // Bob drops off; three messages later he reconnects and asks for what he missed.
    bob.close().await;
    for text in ["one", "two", "three"] {
        ack(&mut olga, &chat("deal", text)).await;
    }
    let mut bob = gw.connect("acme", "bob", Role::User).await;
    bob.send(&json!({ "type": "GET_HISTORY", "conversationId": "deal", "sinceSeq": 1 }))
        .await;
    let missed = bob.expect("HISTORY").await;
    let got: Vec<(u64, &str)> = missed["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["content"]["text"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(2, "one"), (3, "two"), (4, "three")]);
    gw.stop().await;
}

/// A user cut through `@connections` DELETE again and again, reconnecting at once each time:
/// every new connection is registered, found by the next cut, and receives the conversation.
#[tokio::test]
async fn a_user_cut_and_reconnecting_at_once_is_registered_and_subscribed_every_time() {
    let gw = GatewayStack::start().await;
    let mut owner = gw.connect("acme", "owner", Role::Owner).await;
    let mut bob = gw.connect("acme", "bob", Role::User).await;
    ack(&mut owner, &create("cuts", "project", &["bob"])).await;
    let management = management_client(&gw.gateway);
    let tenant = messaging_core::TenantId::parse("acme").unwrap();
    let bob_id = messaging_core::UserId::parse("bob").unwrap();
    for round in 0..6 {
        let connections = gw
            .stack
            .route
            .table
            .user_connections(&tenant, &bob_id)
            .await
            .unwrap();
        assert_eq!(
            connections.len(),
            1,
            "round {round}: bob's one connection is registered"
        );
        management
            .delete_connection()
            .connection_id(connections[0].as_str())
            .send()
            .await
            .unwrap();
        bob.ended(Duration::from_secs(3)).await;
        bob = gw.connect("acme", "bob", Role::User).await;
        ack(&mut owner, &chat("cuts", &format!("round {round}"))).await;
        let got = bob.expect("NEW_MESSAGE").await;
        assert_eq!(got["data"]["content"]["text"], format!("round {round}"));
    }
}
