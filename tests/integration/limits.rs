//! Every answer fits in one API Gateway WebSocket message (128 KB) however large the data, and
//! paging through it yields everything exactly once; items stay far below DynamoDB's 400 KB.

use std::collections::BTreeSet;

use messaging_core::protocol::MAX_MESSAGE_BYTES;
use messaging_core::Role;
use serde_json::{json, Value};
use test_support::{chat, create, TestStack};

/// A text of about 30 KB (the frame limit is 32 KB) that search still finds by `word`.
fn big_text(word: &str, i: usize) -> String {
    format!("{word} {i} {}", "lorem ipsum ".repeat(2_500))
}

/// Sends `frame` and follows `nextCursor` to the end: every page's size, and the `field` items.
async fn all_pages(
    stack: &TestStack,
    client: &test_support::Client,
    frame: Value,
    field: &str,
) -> (Vec<usize>, Vec<Value>) {
    let (mut sizes, mut items) = (Vec::new(), Vec::new());
    let mut frame = frame;
    loop {
        let (_, answer) = stack.send(client, &frame).await;
        assert_ne!(answer["type"], "ERROR", "{answer}");
        sizes.push(answer.to_string().len());
        items.extend(answer[field].as_array().unwrap().iter().cloned());
        match answer["nextCursor"].as_str() {
            Some(cursor) => frame["cursor"] = json!(cursor),
            None => return (sizes, items),
        }
    }
}

#[tokio::test]
async fn history_threads_and_search_answers_fit_a_websocket_message_and_page_through_it_all() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    stack.send(&owner, &create("big", "project", &[])).await;
    for i in 0..12 {
        let (_, ack) = stack
            .send(&owner, &chat("big", &big_text("quarterly", i)))
            .await;
        assert_eq!(ack["type"], "ACK", "{ack}");
    }
    for i in 0..6 {
        let reply = json!({ "type": "CHAT_MESSAGE", "conversationId": "big", "parentSeq": 1, "content": { "text": big_text("reply", i) } });
        assert_eq!(stack.send(&owner, &reply).await.1["type"], "ACK");
    }
    stack.index_search().await;
    let cases = [
        (
            json!({ "type": "GET_HISTORY", "conversationId": "big", "limit": 100 }),
            "messages",
            18,
        ),
        (
            json!({ "type": "GET_HISTORY", "conversationId": "big", "limit": 100, "sinceSeq": 0 }),
            "messages",
            18,
        ),
        (
            json!({ "type": "GET_THREAD", "conversationId": "big", "seq": 1, "limit": 100 }),
            "replies",
            6,
        ),
        (
            json!({ "type": "SEARCH", "query": "quarterly", "limit": 100 }),
            "results",
            12,
        ),
    ];
    for (frame, field, expected) in cases {
        let (sizes, items) = all_pages(&stack, &owner, frame.clone(), field).await;
        assert!(
            sizes.iter().all(|s| *s <= MAX_MESSAGE_BYTES),
            "{frame}: pages of {sizes:?} bytes"
        );
        assert!(
            sizes.len() > 1,
            "{frame}: one page held everything ({sizes:?})"
        );
        let seqs: BTreeSet<u64> = items.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert_eq!(
            (items.len(), seqs.len()),
            (expected, expected),
            "{frame}: every item once"
        );
    }
}

#[tokio::test]
async fn conversations_members_and_files_come_a_page_at_a_time() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    for i in 0..60 {
        stack
            .send(&owner, &create(&format!("c{i:02}"), "project", &[]))
            .await;
    }
    let (sizes, conversations) = all_pages(
        &stack,
        &owner,
        json!({ "type": "LIST_CONVERSATIONS" }),
        "conversations",
    )
    .await;
    assert_eq!(sizes.len(), 2, "50 a page by default");
    let ids: BTreeSet<&str> = conversations
        .iter()
        .map(|c| c["conversationId"].as_str().unwrap())
        .collect();
    assert_eq!((conversations.len(), ids.len()), (60, 60));

    // 250 members: GET_HISTORY lists the first ones and says there are more; GET_PRESENCE
    // pages through them all.
    let members: Vec<String> = (0..250).map(|i| format!("member{i:03}")).collect();
    for chunk in members.chunks(100) {
        let add = json!({ "type": "ADD_MEMBERS", "conversationId": "c00", "members": chunk });
        assert_eq!(stack.send(&owner, &add).await.1["type"], "ACK");
    }
    let (_, history) = stack
        .send(
            &owner,
            &json!({ "type": "GET_HISTORY", "conversationId": "c00" }),
        )
        .await;
    assert_eq!(history["moreMembers"], true, "{}", history["members"]);
    let (_, everyone) = all_pages(
        &stack,
        &owner,
        json!({ "type": "GET_PRESENCE", "conversationId": "c00" }),
        "members",
    )
    .await;
    assert_eq!(everyone.len(), 251, "the owner and 250 members");

    for i in 0..30 {
        let register = json!({ "type": "REGISTER_FILE", "fileId": format!("f{i:02}"), "name": format!("report {i}.pdf"), "size": 10, "mimeType": "application/pdf" });
        assert_eq!(stack.send(&owner, &register).await.1["type"], "FILE");
    }
    let (sizes, files) = all_pages(
        &stack,
        &owner,
        json!({ "type": "LIST_FILES", "limit": 7 }),
        "files",
    )
    .await;
    assert_eq!(sizes.len(), 5);
    let ids: BTreeSet<&str> = files
        .iter()
        .map(|f| f["fileId"].as_str().unwrap())
        .collect();
    assert_eq!((files.len(), ids.len()), (30, 30));
}

#[tokio::test]
async fn reactions_stop_before_a_message_outgrows_its_item() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    stack.send(&owner, &create("hot", "general", &[])).await;
    stack.send(&owner, &chat("hot", "vote")).await;
    // 20 emoji and reactors with 125-character ids, until the reactions take just under
    // 64 KB: written straight into the message (as some 500 reactions would have).
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let mut lists: Vec<Vec<String>> = vec![Vec::new(); 20];
    for u in 0.. {
        lists[u % 20].push(format!("{}{u:04}", "u".repeat(121)));
        let json: std::collections::BTreeMap<String, &Vec<String>> = lists
            .iter()
            .enumerate()
            .map(|(e, l)| (format!("e{e}"), l))
            .collect();
        if serde_json::to_vec(&json).unwrap().len() > 64 * 1024 - 120 {
            break;
        }
    }
    let reactions: std::collections::HashMap<String, A> = lists
        .into_iter()
        .enumerate()
        .map(|(e, l)| (format!("e{e}"), A::L(l.into_iter().map(A::S).collect())))
        .collect();
    stack
        .dynamodb
        .update_item()
        .table_name(&stack.table_name)
        .set_key(Some(test_support::key_map(
            &test_support::keys("acme").key(|k| k.message(&test_support::conversation("hot"), 1)),
        )))
        .update_expression("SET reactions = :r")
        .expression_attribute_values(":r", A::M(reactions))
        .send()
        .await
        .unwrap();
    let voter = stack.connect_as("acme", &"v".repeat(128), Role::User).await;
    stack
        .send(
            &voter,
            &json!({ "type": "JOIN_CONVERSATION", "conversationId": "hot" }),
        )
        .await;
    let react = |emoji: &str| json!({ "type": "ADD_REACTION", "conversationId": "hot", "seq": 1, "emoji": emoji });
    let (_, refused) = stack.send(&voter, &react("e3")).await;
    assert_eq!(refused["code"], "INVALID_FIELD", "{refused}");
    // Taking a reaction back always works, and makes room.
    let unreact =
        json!({ "type": "REMOVE_REACTION", "conversationId": "hot", "seq": 1, "emoji": "e3" });
    let (_, taken_back) = stack.send(&owner, &unreact).await;
    assert_eq!(taken_back["type"], "ACK", "{taken_back}");
    let (_, history) = stack
        .send(
            &owner,
            &json!({ "type": "GET_HISTORY", "conversationId": "hot" }),
        )
        .await;
    let reactions = history["messages"][0]["reactions"].to_string();
    assert!(reactions.len() <= 64 * 1024, "{} bytes", reactions.len());
}

#[tokio::test]
async fn a_conversation_with_the_most_members_is_created_in_one_transaction_and_one_more_is_refused(
) {
    use messaging_core::protocol::MAX_INITIAL_MEMBERS;
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let names: Vec<String> = (0..=MAX_INITIAL_MEMBERS)
        .map(|i| format!("m{i:03}"))
        .collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();

    // One more than fits is refused up front, with nothing written (it used to reach DynamoDB
    // as a 101+-action transaction and come back INTERNAL).
    let before = stack.snapshot().await;
    let (_, answer) = stack.send(&owner, &create("big", "project", &all)).await;
    assert_eq!(answer["code"], "INVALID_FIELD", "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("ADD_MEMBERS"),
        "{answer}"
    );
    assert_eq!(stack.snapshot().await, before);

    // The most that fit: created, every member in it.
    let most = &all[..MAX_INITIAL_MEMBERS];
    let (_, answer) = stack.send(&owner, &create("big", "project", most)).await;
    assert_eq!(answer["type"], "ACK", "{answer}");
    let (_, members) = stack
        .send(
            &owner,
            &json!({ "type": "GET_PRESENCE", "conversationId": "big", "limit": 1000 }),
        )
        .await;
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(MAX_INITIAL_MEMBERS + 1),
        "{members}"
    );
}

#[tokio::test]
async fn the_longest_tenant_and_conversation_ids_still_queue_and_deliver() {
    // A FIFO group is `{tenant}#{conversation}`: 129 characters for two 64-character ids, one
    // more than SQS takes (the test moto refuses it, as AWS does).
    let stack = TestStack::new().await;
    let tenant = "t".repeat(64);
    let conversation = "c".repeat(64);
    let owner = stack.connect_as(&tenant, "owner", Role::Owner).await;
    let bob = stack.connect_as(&tenant, "bob", Role::User).await;
    let (_, answer) = stack
        .send(&owner, &create(&conversation, "project", &["bob"]))
        .await;
    assert_eq!(answer["type"], "ACK", "{answer}");
    let (_, answer) = stack.send(&owner, &chat(&conversation, "hello")).await;
    assert_eq!(answer["type"], "ACK", "{answer}");
    stack.pump().await;
    let to_bob = test_support::frames_for(&stack.gateway.take(), &bob);
    assert!(
        to_bob
            .iter()
            .any(|f| f["type"] == "NEW_MESSAGE" && f["data"]["content"]["text"] == "hello"),
        "{to_bob:?}"
    );
}
