//! Two tenants with several users each, whose user and conversation ids collide on purpose:
//! each message reaches every member of its conversation exactly once and nobody else.

use std::collections::BTreeMap;

use messaging_core::Role;
use serde_json::json;
use test_support::{
    chat, connection_key, conversation, frames_for, item_name, keys, texts, user, Client, TestStack,
};

#[tokio::test]
async fn two_tenants_exchange_messages_and_each_member_receives_each_exactly_once() {
    let stack = TestStack::new().await;
    // Tenant "acme": four users; "globex": three, two of them with acme's user names.
    let a_owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let a_admin = stack.connect_as("acme", "admin", Role::Admin).await;
    let a_user1 = stack.connect_as("acme", "user1", Role::User).await;
    let a_user2 = stack.connect_as("acme", "user2", Role::User).await;
    let g_owner = stack.connect_as("globex", "owner", Role::Owner).await;
    let g_user1 = stack.connect_as("globex", "user1", Role::User).await;
    let g_user3 = stack.connect_as("globex", "user3", Role::User).await;

    // Same conversation ids in both tenants.
    let create = |id: &str, kind: &str, members: &[&str]| json!({ "type": "CREATE_CONVERSATION", "conversationId": id, "kind": kind, "members": members });
    for (client, frame) in [
        (
            &a_owner,
            create("general", "general", &["admin", "user1", "user2"]),
        ),
        (&a_owner, create("project-1", "project", &["user1"])),
        (&g_owner, create("general", "general", &["user1", "user3"])),
        (&g_owner, create("project-1", "project", &["user3"])),
    ] {
        assert_eq!(stack.send(client, &frame).await.1["type"], "ACK");
    }
    stack.pump().await;
    stack.gateway.take();

    let sends: Vec<(&Client, &str, &str)> = vec![
        (&a_owner, "general", "acme general 1"),
        (&a_user2, "general", "acme general 2"),
        (&a_user1, "project-1", "acme project 1"),
        (&a_owner, "project-1", "acme project 2"),
        (&g_user1, "general", "globex general 1"),
        (&g_user3, "project-1", "globex project 1"),
        (&g_owner, "project-1", "globex project 2"),
    ];
    for (client, conversation, text) in &sends {
        let (status, ack) = stack.send(client, &chat(conversation, text)).await;
        assert_eq!(
            (status, ack["type"].as_str()),
            (200, Some("ACK")),
            "{text}: {ack}"
        );
    }
    stack.pump().await;
    let deliveries = stack.gateway.take();

    let expected: BTreeMap<&str, (&Client, Vec<&str>)> = BTreeMap::from([
        (
            "acme owner",
            (&a_owner, vec!["acme general 2", "acme project 1"]),
        ),
        (
            "acme admin",
            (&a_admin, vec!["acme general 1", "acme general 2"]),
        ),
        (
            "acme user1",
            (
                &a_user1,
                vec!["acme general 1", "acme general 2", "acme project 2"],
            ),
        ),
        ("acme user2", (&a_user2, vec!["acme general 1"])),
        (
            "globex owner",
            (&g_owner, vec!["globex general 1", "globex project 1"]),
        ),
        ("globex user1", (&g_user1, vec![])),
        (
            "globex user3",
            (&g_user3, vec!["globex general 1", "globex project 2"]),
        ),
    ]);
    for (who, (client, want)) in expected {
        let got = texts(&frames_for(&deliveries, client));
        let mut want: Vec<String> = want.into_iter().map(String::from).collect();
        want.sort();
        assert_eq!(got, want, "{who} received the wrong messages");
    }
    let new_messages = deliveries
        .iter()
        .filter(|(_, b)| b.contains("NEW_MESSAGE"))
        .count();
    assert_eq!(new_messages, 12, "no delivery beyond the expected ones");
}

#[tokio::test]
async fn a_forged_foreign_conversation_is_refused_with_nothing_written() {
    let stack = TestStack::new().await;
    let a_owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let g_owner = stack.connect_as("globex", "owner", Role::Owner).await;
    let create =
        json!({ "type": "CREATE_CONVERSATION", "conversationId": "secret", "kind": "project" });
    assert_eq!(stack.send(&a_owner, &create).await.1["type"], "ACK");
    stack.pump().await;
    stack.gateway.take();
    let before = stack.snapshot().await;

    // By channel: refused before anything is read.
    let forged = json!({ "type": "CHAT_MESSAGE", "channel": "client:acme:project:secret", "content": { "text": "x" } });
    let (status, frame) = stack.send(&g_owner, &forged).await;
    assert_eq!(
        (status, frame["code"].as_str()),
        (403, Some("CROSS_TENANT"))
    );
    // By id: resolves inside globex only, where there is no such conversation.
    let (_, frame) = stack.send(&g_owner, &chat("secret", "x")).await;
    assert_eq!(frame["code"], "CONVERSATION_NOT_FOUND");
    // Joining it by channel or typing into it: refused the same way.
    let join = json!({ "type": "JOIN_CONVERSATION", "channel": "client:acme:project:secret" });
    assert_eq!(stack.send(&g_owner, &join).await.1["code"], "CROSS_TENANT");
    let typing = json!({ "type": "TYPING_START", "conversationId": "secret" });
    assert_eq!(
        stack.send(&g_owner, &typing).await.1["code"],
        "CONVERSATION_NOT_FOUND"
    );
    // A body cannot claim another tenant or user: naming one is refused (they come from the
    // token only), and the frame is not acted on.
    let spoof = json!({ "type": "CHAT_MESSAGE", "clientId": "acme", "senderId": "owner", "conversationId": "secret", "content": { "text": "x" } });
    assert_eq!(
        stack.send(&g_owner, &spoof).await.1["code"],
        "INVALID_FIELD"
    );

    assert_eq!(
        stack.snapshot().await,
        before,
        "a refused frame wrote something"
    );
    stack.pump().await;
    assert!(
        stack.gateway.take().is_empty(),
        "a refused frame delivered something"
    );
}

/// API Gateway answers 410 for a connection whose `$connect` has not finished: it is kept
/// (pruning it would leave its socket, open a moment later, reachable by nobody), and the
/// same 410 for the same connection prunes it once it is past the grace.
#[tokio::test]
async fn a_410_for_a_connection_still_connecting_keeps_it() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let create = json!({ "type": "CREATE_CONVERSATION", "conversationId": "team", "kind": "project", "members": ["bob"] });
    assert_eq!(stack.send(&owner, &create).await.1["type"], "ACK");
    let connecting = stack.connect_as("acme", "bob", Role::User).await;
    stack.pump().await;
    stack.gateway.take();
    stack.gateway.mark_gone(connecting.connection.as_str());
    stack.send(&owner, &chat("team", "while you connect")).await;
    stack.pump().await;
    let items = stack.snapshot().await;
    assert!(items.contains_key(&item_name(&connection_key(connecting.connection.as_str()))));
    assert!(items.contains_key(&keys("acme").name(|k| k.subscription(
        &conversation("team"),
        0,
        &connecting.connection
    ))));
    assert_eq!(
        items[&keys("acme").name(|k| k.user(&user("bob")))]["connectionCount"]
            .as_n()
            .unwrap(),
        "1"
    );

    let gone = stack.connect_long_ago("acme", "bob", Role::User).await;
    stack.gateway.mark_gone(gone.connection.as_str());
    stack.send(&owner, &chat("team", "anyone?")).await;
    stack.pump().await;
    let items = stack.snapshot().await;
    assert!(
        !items.keys().any(|k| k.contains(gone.connection.as_str())),
        "a connection gone past the grace is pruned"
    );
    assert!(items.contains_key(&item_name(&connection_key(connecting.connection.as_str()))));
}

#[tokio::test]
async fn a_dead_recipient_is_pruned_on_410_while_the_others_still_receive() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let create = json!({ "type": "CREATE_CONVERSATION", "conversationId": "team", "kind": "project", "members": ["bob", "carol"] });
    assert_eq!(stack.send(&owner, &create).await.1["type"], "ACK");
    let bob_phone = stack.connect_long_ago("acme", "bob", Role::User).await;
    let bob_laptop = stack.connect_as("acme", "bob", Role::User).await;
    let carol = stack.connect_as("acme", "carol", Role::User).await;
    stack.pump().await;
    stack.gateway.take();

    stack.gateway.mark_gone(bob_phone.connection.as_str());
    stack.send(&owner, &chat("team", "still there?")).await;
    let responses = stack.pump().await;
    assert!(
        responses.iter().all(|r| r.batch_item_failures.is_empty()),
        "a 410 is not a failure"
    );
    let deliveries = stack.gateway.take();
    assert_eq!(
        texts(&frames_for(&deliveries, &bob_laptop)),
        ["still there?"]
    );
    assert_eq!(texts(&frames_for(&deliveries, &carol)), ["still there?"]);
    assert!(frames_for(&deliveries, &bob_phone).is_empty());

    let items = stack.snapshot().await;
    let phone = bob_phone.connection.as_str();
    let left: Vec<_> = items.keys().filter(|k| k.contains(phone)).collect();
    assert!(
        left.is_empty(),
        "the dead connection's records remain: {left:?}"
    );
    assert!(items.contains_key(&item_name(&connection_key(bob_laptop.connection.as_str()))));
    assert!(items.contains_key(&keys("acme").name(|k| k.subscription(
        &conversation("team"),
        0,
        &bob_laptop.connection
    ))));
    assert_eq!(
        items[&keys("acme").name(|k| k.user(&user("bob")))]["connectionCount"]
            .as_n()
            .unwrap(),
        "1"
    );
    assert_eq!(
        items[&keys("acme").name(|k| k.user(&user("bob")))]["presence"]
            .as_s()
            .unwrap(),
        "online"
    );

    // The next message is not even attempted for the pruned connection.
    stack.send(&owner, &chat("team", "second")).await;
    stack.pump().await;
    assert_eq!(stack.gateway.take().len(), 2);
}
