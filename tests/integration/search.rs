//! The search index written off the message path: the table's stream through the real
//! search indexer, blocks at every level, read back through SEARCH against moto.

use messaging_core::Role;
use serde_json::json;
use test_support::{chat, create, keys, TestStack};

/// Every page of a search, following its cursors: the texts, and how many pages it took.
async fn all_results(
    stack: &TestStack,
    who: &test_support::Client,
    query: &str,
) -> (Vec<String>, usize) {
    let mut texts = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut frame = json!({ "type": "SEARCH", "query": query, "limit": 7 });
        if let Some(c) = &cursor {
            frame["cursor"] = json!(c);
        }
        let (_, page) = stack.send(who, &frame).await;
        assert_eq!(page["type"], "SEARCH_RESULTS", "{page}");
        pages += 1;
        texts.extend(
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["content"]["text"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (texts, pages),
        }
        assert!(pages < 200, "no end to the pages");
    }
}

#[tokio::test]
async fn search_reads_blocks_of_every_level_newest_first_each_message_once_and_only_the_readers_own(
) {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let alice = stack.connect_as("acme", "alice", Role::User).await;
    let foreign = stack.connect_as("globex", "owner", Role::Owner).await;
    stack
        .send(&owner, &create("big", "project", &["alice"]))
        .await;
    stack.send(&owner, &create("secret", "project", &[])).await;
    stack.send(&foreign, &create("big", "project", &[])).await;

    // One large batch (its blocks split 64 ways), then a batch in a conversation alice cannot
    // read, then three small batches of one message each.
    for i in 0..150 {
        let text = format!(
            "contract alpha{i} beta{i} gamma{i} delta{i} epsilon{i} zeta{i} eta{i} theta{i} iota{i} kappa{i}"
        );
        let (_, ack) = stack.send(&owner, &chat("big", &text)).await;
        assert_eq!(ack["type"], "ACK", "{ack}");
    }
    stack.send(&foreign, &chat("big", "globex contract")).await;
    let first = stack.index_search().await;
    assert_eq!(
        first.iter().map(|r| r.lines).sum::<usize>(),
        151,
        "{first:?}"
    );
    // A medium batch (split 8 ways).
    for i in 0..30 {
        let text = format!("contract medium{i} with several more words in every line");
        stack.send(&owner, &chat("big", &text)).await;
    }
    let medium = stack.index_search().await;
    assert_eq!(medium.len(), 1, "{medium:?}");
    assert_eq!(medium[0].blocks, 8, "{medium:?}");
    for i in 0..5 {
        stack
            .send(&owner, &chat("secret", &format!("secret contract {i}")))
            .await;
    }
    stack.index_search().await;
    for i in 0..3 {
        stack
            .send(&owner, &chat("big", &format!("late contract {i}")))
            .await;
        stack.index_search().await;
    }

    let items = stack.snapshot().await;
    let prefix = keys("acme").prefix(|k| k.search_index_prefix().to_owned());
    let mut levels: Vec<&str> = items
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix))
        .map(|sk| &sk[..2])
        .collect();
    levels.dedup();
    assert_eq!(
        levels,
        ["01", "08", "64"],
        "small batches at level 1, the medium one at 8, the large one at 64"
    );
    let blocks = items.keys().filter(|k| k.starts_with(&prefix)).count();
    assert!(
        blocks < 150,
        "the 150-message batch is far fewer items than messages ({blocks} blocks in all)"
    );

    let (texts, pages) = all_results(&stack, &alice, "contract").await;
    assert_eq!(texts.len(), 183, "every readable message once");
    let mut unique = texts.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 183, "no message twice");
    assert!(pages >= 27, "pages of 7: {pages}");
    assert_eq!(
        &texts[..3],
        ["late contract 2", "late contract 1", "late contract 0"],
        "newest block first"
    );
    assert_eq!(
        texts[3],
        "contract medium29 with several more words in every line"
    );
    assert_eq!(
        texts[33],
        "contract alpha149 beta149 gamma149 delta149 epsilon149 zeta149 eta149 theta149 iota149 kappa149"
    );
    assert!(
        !texts
            .iter()
            .any(|t| t.contains("secret") || t.contains("globex")),
        "nothing from a conversation alice is not in, nor from another tenant"
    );
    // A rare word is found in the large batch's bucket, and two words both have to match.
    let (rare, _) = all_results(&stack, &alice, "gamma77").await;
    assert_eq!(
        rare,
        ["contract alpha77 beta77 gamma77 delta77 epsilon77 zeta77 eta77 theta77 iota77 kappa77"]
    );
    let (both, _) = all_results(&stack, &alice, "alpha3 beta4").await;
    assert_eq!(both, Vec::<String>::new());
    let (theirs, _) = all_results(&stack, &foreign, "contract").await;
    assert_eq!(theirs, ["globex contract"]);
}

#[tokio::test]
async fn a_batch_indexed_again_writes_the_same_blocks() {
    // Lambda retries a stream batch after a failure: the same records give the same keys, so
    // a retry overwrites what the first attempt wrote instead of adding copies.
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    stack.send(&owner, &create("team", "project", &[])).await;
    for i in 0..40 {
        stack
            .send(
                &owner,
                &chat(
                    "team",
                    &format!("invoice number{i} paid in full by the client"),
                ),
            )
            .await;
    }
    let event = stack
        .stream
        .next_batch()
        .await
        .unwrap()
        .expect("the stream has the messages");
    let records: aws_lambda_events::dynamodb::Event = serde_json::from_value(event).unwrap();
    let once = messaging_handlers::search_indexer::index(&stack.indexer, &records)
        .await
        .1;
    let count = |items: &std::collections::BTreeMap<String, _>| {
        let prefix = keys("acme").prefix(|k| k.search_index_prefix().to_owned());
        items
            .keys()
            .filter(|k: &&String| k.starts_with(&prefix))
            .count()
    };
    let after_once = count(&stack.snapshot().await);
    assert_eq!(after_once, once.blocks);
    assert!(once.blocks > 1, "{once:?}");
    let twice = messaging_handlers::search_indexer::index(&stack.indexer, &records)
        .await
        .1;
    assert_eq!(twice.blocks, once.blocks);
    assert_eq!(count(&stack.snapshot().await), after_once, "no copies");
}

/// Quiet portals share the indexer's write requests; when one fails, every tenant it carried
/// is reported (the batch is handed again from the earliest of their records) and nothing is
/// lost.
#[tokio::test]
async fn tenants_share_block_writes_and_a_failed_write_fails_each_tenant_it_carried() {
    let (stack, proxy) = TestStack::with_fault_proxy().await;
    for tenant in ["acme", "globex", "initech"] {
        let owner = stack.connect_as(tenant, "owner", Role::Owner).await;
        stack.send(&owner, &create("team", "project", &[])).await;
        let (_, ack) = stack
            .send(&owner, &chat("team", &format!("quarterly {tenant} report")))
            .await;
        assert_eq!(ack["type"], "ACK", "{ack}");
    }
    let event = stack.stream.next_batch().await.unwrap().expect("a batch");
    let records: aws_lambda_events::dynamodb::Event = serde_json::from_value(event).unwrap();
    stack.dynamo_requests.reset();
    let (response, report) =
        messaging_handlers::search_indexer::index(&stack.indexer, &records).await;
    assert_eq!((report.tenants, report.blocks), (3, 3), "{report:?}");
    assert_eq!(
        stack.dynamo_requests.snapshot().get("BatchWriteItem"),
        Some(&1),
        "three tenants, one request"
    );
    assert!(response.batch_item_failures.is_empty());
    // The same batch while DynamoDB refuses the write (past the SDK's three attempts).
    proxy.inject("BatchWriteItem", test_support::Fault::ServerError, 3);
    let (response, report) =
        messaging_handlers::search_indexer::index(&stack.indexer, &records).await;
    assert_eq!(report.failed_tenants, 3, "{report:?}");
    assert_eq!(response.batch_item_failures.len(), 1, "the earliest record");
    let first = records.records[0].change.sequence_number.clone();
    assert_eq!(response.batch_item_failures[0].item_identifier, first);
    // Handed again, it is written: every tenant finds its message.
    let (response, _) = messaging_handlers::search_indexer::index(&stack.indexer, &records).await;
    assert!(response.batch_item_failures.is_empty());
    for tenant in ["acme", "globex", "initech"] {
        let owner = stack.connect_as(tenant, "owner", Role::Owner).await;
        let (_, found) = stack
            .send(&owner, &json!({ "type": "SEARCH", "query": "quarterly" }))
            .await;
        assert_eq!(
            found["results"].as_array().unwrap().len(),
            1,
            "{tenant}: {found}"
        );
    }
}
