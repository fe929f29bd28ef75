//! Search, read receipts and unread counts, presence, and membership changes: through the
//! real route and broadcast handlers against moto.

use aws_sdk_dynamodb::types::AttributeValue;
use messaging_core::Role;
use serde_json::{json, Value};
use test_support::{
    chat, connection_key, conversation, create, frames_for, item_name, key_map, keys, user,
    TestStack,
};

fn texts_of(frame: &Value, field: &str) -> Vec<String> {
    frame[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {frame}"))
        .iter()
        .map(|m| m["content"]["text"].as_str().unwrap().to_owned())
        .collect()
}

fn search(query: &str) -> Value {
    json!({ "type": "SEARCH", "query": query })
}

/// Every search block of the tenant `tenant`, decoded.
fn search_blocks(
    items: &std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    >,
    tenant: &str,
) -> Vec<messaging_core::search::Block> {
    let prefix = keys(tenant).prefix(|k| k.search_index_prefix().to_owned());
    items
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, item)| {
            messaging_core::search::Block::decode(item["lines"].as_s().unwrap()).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn search_finds_only_readable_messages_newest_first_and_follows_edits_and_deletes() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let alice = stack.connect_as("acme", "alice", Role::User).await;
    let carol = stack.connect_as("acme", "carol", Role::User).await;
    let foreign = stack.connect_as("globex", "owner", Role::Owner).await;
    stack
        .send(&owner, &create("team", "project", &["alice"]))
        .await;
    stack
        .send(&owner, &create("board", "project", &["carol"]))
        .await;
    stack.send(&foreign, &create("team", "project", &[])).await;

    for (who, conversation, text) in [
        (&owner, "team", "Quarterly contract renewal is due"),
        (&alice, "team", "I read the contract"),
        (&owner, "board", "Board-only: contract penalties"),
        (&foreign, "team", "globex contract, same conversation id"),
        (&alice, "team", "Contract draft for Friday"),
        (&alice, "team", "Lunch?"),
    ] {
        let (_, ack) = stack.send(who, &chat(conversation, text)).await;
        assert_eq!(ack["type"], "ACK", "{ack}");
    }
    // The send writes no index: nothing is found until the indexer has read the stream.
    let (_, early) = stack.send(&alice, &search("contract")).await;
    assert_eq!(texts_of(&early, "results"), Vec::<String>::new());
    let reports = stack.index_search().await;
    let lines: usize = reports.iter().map(|r| r.lines).sum();
    let blocks: usize = reports.iter().map(|r| r.blocks).sum();
    assert_eq!(lines, 6, "six messages indexed: {reports:?}");
    assert_eq!(
        blocks, 2,
        "one small block per tenant for the batch: {reports:?}"
    );

    let (_, found) = stack.send(&alice, &search("CONTRACT")).await;
    assert_eq!(found["type"], "SEARCH_RESULTS", "{found}");
    assert_eq!(
        texts_of(&found, "results"),
        [
            "Contract draft for Friday",
            "I read the contract",
            "Quarterly contract renewal is due"
        ],
        "alice's conversations only, newest first"
    );
    let (_, both) = stack.send(&alice, &search("renewal contract")).await;
    assert_eq!(
        texts_of(&both, "results"),
        ["Quarterly contract renewal is due"]
    );
    let (_, board) = stack.send(&carol, &search("contract")).await;
    assert_eq!(
        texts_of(&board, "results"),
        ["Board-only: contract penalties"]
    );
    let (_, theirs) = stack.send(&foreign, &search("contract")).await;
    assert_eq!(
        texts_of(&theirs, "results"),
        ["globex contract, same conversation id"]
    );

    // Pages of one, with a cursor that only alice can use for this query.
    let (_, first) = stack
        .send(
            &alice,
            &json!({ "type": "SEARCH", "query": "contract", "limit": 1 }),
        )
        .await;
    assert_eq!(texts_of(&first, "results"), ["Contract draft for Friday"]);
    let cursor = first["nextCursor"].as_str().unwrap();
    let (_, second) = stack
        .send(
            &alice,
            &json!({ "type": "SEARCH", "query": "contract", "limit": 1, "cursor": cursor }),
        )
        .await;
    assert_eq!(texts_of(&second, "results"), ["I read the contract"]);
    let (_, stolen) = stack
        .send(
            &carol,
            &json!({ "type": "SEARCH", "query": "contract", "limit": 1, "cursor": cursor }),
        )
        .await;
    assert_eq!(stolen["code"], "INVALID_CURSOR");
    let (_, other_query) = stack
        .send(
            &alice,
            &json!({ "type": "SEARCH", "query": "lunch", "cursor": cursor }),
        )
        .await;
    assert_eq!(other_query["code"], "INVALID_CURSOR");

    // An edit moves the message from "contract" to "invoice" (its old line no longer finds
    // it, even before the indexer has run); a delete removes it; a reaction indexes nothing.
    let (_, ack) = stack.send(&alice, &json!({ "type": "EDIT_MESSAGE", "conversationId": "team", "seq": 3, "content": { "text": "Invoice draft for Friday" } })).await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    let (_, before_indexing) = stack.send(&alice, &search("contract")).await;
    assert_eq!(
        texts_of(&before_indexing, "results"),
        ["I read the contract", "Quarterly contract renewal is due"]
    );
    let (_, ack) = stack
        .send(
            &alice,
            &json!({ "type": "ADD_REACTION", "conversationId": "team", "seq": 1, "emoji": "👍" }),
        )
        .await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    let reports = stack.index_search().await;
    assert_eq!(
        reports.iter().map(|r| r.lines).sum::<usize>(),
        1,
        "the edit is indexed, the reaction is not: {reports:?}"
    );
    let (_, after_edit) = stack.send(&alice, &search("contract")).await;
    assert_eq!(
        texts_of(&after_edit, "results"),
        ["I read the contract", "Quarterly contract renewal is due"]
    );
    let (_, invoice) = stack.send(&alice, &search("invoice")).await;
    assert_eq!(texts_of(&invoice, "results"), ["Invoice draft for Friday"]);
    let (_, ack) = stack
        .send(
            &alice,
            &json!({ "type": "DELETE_MESSAGE", "conversationId": "team", "seq": 2 }),
        )
        .await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    let (_, after_delete) = stack.send(&alice, &search("contract")).await;
    assert_eq!(
        texts_of(&after_delete, "results"),
        ["Quarterly contract renewal is due"]
    );
    let items = stack.snapshot().await;
    let globex = search_blocks(&items, "globex");
    assert_eq!(globex.len(), 1);
    assert_eq!(
        globex[0]
            .lines
            .iter()
            .map(|l| l.words.join(" "))
            .collect::<Vec<_>>(),
        ["globex contract same conversation id"],
        "a tenant's blocks hold its own messages only"
    );
    let acme: Vec<String> = search_blocks(&items, "acme")
        .iter()
        .flat_map(|b| {
            b.lines
                .iter()
                .map(|l| format!("{}/{}", l.conversation_id, l.seq))
        })
        .collect();
    assert_eq!(acme.len(), 6, "five lines and the edit's: {acme:?}");

    // Removed from the conversation: its messages leave alice's results.
    let (_, ack) = stack
        .send(
            &owner,
            &json!({ "type": "REMOVE_MEMBER", "conversationId": "team", "userId": "alice" }),
        )
        .await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    let (_, gone) = stack.send(&alice, &search("contract")).await;
    assert_eq!(texts_of(&gone, "results"), Vec::<String>::new());
    let (_, bad) = stack.send(&alice, &search("the of and")).await;
    assert_eq!(bad["code"], "INVALID_FIELD");
}

#[tokio::test]
async fn read_markers_drive_unread_counts_and_are_announced_as_receipts() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let bob = stack.connect_as("acme", "bob", Role::User).await;
    stack
        .send(&owner, &create("team", "project", &["bob"]))
        .await;
    stack
        .send(&owner, &create("quiet", "project", &["bob"]))
        .await;
    for text in ["a", "b", "c"] {
        stack.send(&owner, &chat("team", text)).await;
    }
    stack
        .send(&bob, &chat("team", "my own message is never unread"))
        .await;
    stack
        .send(
            &owner,
            &json!({ "type": "DELETE_MESSAGE", "conversationId": "team", "seq": 2 }),
        )
        .await;

    let list = |frame: &Value| -> Vec<(String, u64, u64)> {
        frame["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["conversationId"].as_str().unwrap().to_owned(),
                    c["lastReadSeq"].as_u64().unwrap(),
                    c["unreadCount"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let (_, before) = stack
        .send(&bob, &json!({ "type": "LIST_CONVERSATIONS" }))
        .await;
    assert_eq!(
        list(&before),
        [("team".into(), 0, 2), ("quiet".into(), 0, 0)],
        "{before}"
    );
    assert_eq!(before["conversations"][0]["lastSeq"], 4);

    stack.pump().await;
    stack.gateway.take();
    let (_, ack) = stack
        .send(
            &bob,
            &json!({ "type": "MARK_READ", "conversationId": "team", "seq": 3 }),
        )
        .await;
    assert_eq!(
        (ack["type"].as_str(), ack["seq"].as_u64()),
        (Some("ACK"), Some(3)),
        "{ack}"
    );
    let (_, after) = stack
        .send(&bob, &json!({ "type": "LIST_CONVERSATIONS" }))
        .await;
    assert_eq!(list(&after)[0], ("team".into(), 3, 0));
    // Never backwards, never beyond the newest message, members only.
    stack
        .send(
            &bob,
            &json!({ "type": "MARK_READ", "conversationId": "team", "seq": 1 }),
        )
        .await;
    let (_, beyond) = stack
        .send(
            &bob,
            &json!({ "type": "MARK_READ", "conversationId": "team", "seq": 99 }),
        )
        .await;
    assert_eq!(beyond["code"], "INVALID_FIELD");
    let (_, after) = stack
        .send(&bob, &json!({ "type": "LIST_CONVERSATIONS" }))
        .await;
    assert_eq!(list(&after)[0], ("team".into(), 3, 0));
    stack.pump().await;
    let receipts = frames_for(&stack.gateway.take(), &owner);
    assert_eq!(
        receipts,
        [json!({ "type": "READ_RECEIPT", "conversationId": "team", "userId": "bob", "seq": 3 })]
    );
}

#[tokio::test]
async fn presence_is_online_away_or_offline_and_lapses_without_a_heartbeat() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let bob = stack.connect_as("acme", "bob", Role::User).await;
    stack
        .send(&owner, &create("team", "project", &["bob", "dave"]))
        .await;
    stack.pump().await;
    stack.gateway.take();
    let who = |frame: &Value| -> Vec<(String, String)> {
        frame["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["userId"].as_str().unwrap().to_owned(),
                    m["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let ask = json!({ "type": "GET_PRESENCE", "conversationId": "team" });
    let (_, now) = stack.send(&owner, &ask).await;
    assert_eq!(now["type"], "PRESENCE_LIST");
    assert_eq!(
        who(&now),
        [
            ("bob".into(), "online".into()),
            ("dave".into(), "offline".into()),
            ("owner".into(), "online".into())
        ]
    );

    let (_, ack) = stack
        .send(&bob, &json!({ "type": "SET_PRESENCE", "status": "away" }))
        .await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    let (_, refused) = stack
        .send(
            &bob,
            &json!({ "type": "SET_PRESENCE", "status": "offline" }),
        )
        .await;
    assert_eq!(refused["code"], "INVALID_FIELD");
    stack.pump().await;
    assert_eq!(
        frames_for(&stack.gateway.take(), &owner),
        [json!({ "type": "PRESENCE", "userId": "bob", "status": "away" })]
    );
    assert_eq!(
        who(&stack.send(&owner, &ask).await.1)[0],
        ("bob".into(), "away".into())
    );

    // Five minutes without a heartbeat (the seed's presence TTL): offline, though connected.
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.table_name)
        .set_key(Some(key_map(&keys("acme").key(|k| k.user(&user("bob"))))))
        .update_expression("SET presenceExpiresAt = :past")
        .expression_attribute_values(
            ":past",
            aws_sdk_dynamodb::types::AttributeValue::N(
                (messaging_core::time::now_millis() - 1).to_string(),
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        who(&stack.send(&owner, &ask).await.1)[0],
        ("bob".into(), "offline".into())
    );
    // The heartbeat brings it back, and members hear it.
    stack
        .send(&bob, &json!({ "type": "SET_PRESENCE", "status": "online" }))
        .await;
    assert_eq!(
        who(&stack.send(&owner, &ask).await.1)[0],
        ("bob".into(), "online".into())
    );
    stack.pump().await;
    assert_eq!(
        frames_for(&stack.gateway.take(), &owner),
        [json!({ "type": "PRESENCE", "userId": "bob", "status": "online" })]
    );
    // Not a member: not told who is there.
    let outsider = stack.connect_as("acme", "eve", Role::User).await;
    assert_eq!(stack.send(&outsider, &ask).await.1["code"], "NOT_A_MEMBER");
}

#[tokio::test]
async fn members_are_added_and_removed_live_and_removal_stops_delivery() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let admin = stack.connect_as("acme", "admin", Role::Admin).await;
    let bob = stack.connect_as("acme", "bob", Role::User).await;
    let carol = stack.connect_as("acme", "carol", Role::User).await;
    stack
        .send(&owner, &create("team", "project", &["admin"]))
        .await;

    let (_, ack) = stack.send(&admin, &json!({ "type": "ADD_MEMBERS", "conversationId": "team", "members": ["bob", "carol"] })).await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    stack.send(&owner, &chat("team", "welcome")).await;
    stack.pump().await;
    let deliveries = stack.gateway.take();
    for client in [&bob, &carol] {
        assert!(
            frames_for(&deliveries, client)
                .iter()
                .any(|f| f["type"] == "NEW_MESSAGE"),
            "subscribed at once"
        );
    }
    assert_eq!(
        frames_for(&deliveries, &owner)
            .iter()
            .filter(|f| f["type"] == "MEMBER_JOINED")
            .count(),
        2
    );

    // A USER can neither add nor remove others, but may leave.
    let (_, refused) = stack
        .send(
            &bob,
            &json!({ "type": "REMOVE_MEMBER", "conversationId": "team", "userId": "carol" }),
        )
        .await;
    assert_eq!(refused["code"], "FORBIDDEN");
    let (_, refused) = stack
        .send(
            &bob,
            &json!({ "type": "ADD_MEMBERS", "conversationId": "team", "members": ["eve"] }),
        )
        .await;
    assert_eq!(refused["code"], "FORBIDDEN");
    let (_, ack) = stack
        .send(
            &admin,
            &json!({ "type": "REMOVE_MEMBER", "conversationId": "team", "userId": "bob" }),
        )
        .await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    let (_, ack) = stack
        .send(
            &carol,
            &json!({ "type": "REMOVE_MEMBER", "conversationId": "team", "userId": "carol" }),
        )
        .await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    let (_, again) = stack
        .send(
            &admin,
            &json!({ "type": "REMOVE_MEMBER", "conversationId": "team", "userId": "bob" }),
        )
        .await;
    assert_eq!(again["code"], "NOT_A_MEMBER");
    stack.pump().await;
    let deliveries = stack.gateway.take();
    assert_eq!(
        frames_for(&deliveries, &bob),
        [
            json!({ "type": "MEMBER_REMOVED", "conversationId": "team", "userId": "bob", "removedBy": "admin" })
        ]
    );
    assert_eq!(
        frames_for(&deliveries, &owner)
            .iter()
            .filter(|f| f["type"] == "MEMBER_REMOVED")
            .count(),
        2
    );

    stack.send(&owner, &chat("team", "after they left")).await;
    stack.pump().await;
    let deliveries = stack.gateway.take();
    assert!(frames_for(&deliveries, &bob).is_empty());
    assert!(frames_for(&deliveries, &carol).is_empty());
    assert_eq!(
        stack.send(&bob, &chat("team", "still here?")).await.1["code"],
        "NOT_A_MEMBER"
    );
    let items = stack.snapshot().await;
    assert!(!items
        .keys()
        .any(|k| [&bob, &carol].iter().any(|c| *k
            == keys("acme").name(|k| k.subscription(&conversation("team"), 0, &c.connection)))));
    let registry = &items[&item_name(&connection_key(bob.connection.as_str()))];
    assert!(registry
        .get("subscriptions")
        .is_none_or(|s| !s.as_ss().unwrap().contains(&"team".to_owned())));
}

#[tokio::test]
async fn a_removed_member_reconnecting_past_a_stale_index_is_not_resubscribed() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let bob = stack.connect_as("acme", "bob", Role::User).await;
    assert_eq!(
        stack
            .send(&owner, &create("deal", "project", &["bob"]))
            .await
            .1["type"],
        "ACK"
    );
    let remove = json!({ "type": "REMOVE_MEMBER", "conversationId": "deal", "userId": "bob" });
    assert_eq!(stack.send(&owner, &remove).await.1["type"], "ACK");
    stack.disconnect(&bob).await;
    // GSI1 is eventually consistent: right after the removal it may still list bob's
    // membership. An item carrying the same index keys stands in for that stale entry.
    let acme = keys("acme");
    let stand_in = acme.key(|k| k.member(&conversation("deal"), &user("stale-index-entry")));
    let mut item = key_map(&stand_in);
    item.insert(
        messaging_aws::table::GSI1PK.to_owned(),
        AttributeValue::S(acme.value(|k| k.user_conversations_gsi1pk(&user("bob")))),
    );
    item.insert(
        messaging_aws::table::GSI1SK.to_owned(),
        AttributeValue::S(acme.value(|k| k.conversation_gsi1sk(&conversation("deal")))),
    );
    stack
        .dynamodb
        .put_item()
        .table_name(&stack.table_name)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();

    let bob_again = stack.connect_as("acme", "bob", Role::User).await;
    stack.pump().await;
    stack.gateway.take();
    assert_eq!(
        stack
            .send(&owner, &chat("deal", "for members only"))
            .await
            .1["type"],
        "ACK"
    );
    stack.pump().await;
    assert!(
        frames_for(&stack.gateway.take(), &bob_again).is_empty(),
        "a removed member received the conversation"
    );
    let items = stack.snapshot().await;
    assert!(!items.contains_key(&acme.name(|k| k.subscription(
        &conversation("deal"),
        0,
        &bob_again.connection
    ))));
}
