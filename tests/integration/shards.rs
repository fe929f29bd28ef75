//! Large conversations: subscriptions spread over shards, a connect storm spread across them,
//! and one message fanned out shard by shard in parallel jobs (docs/scale.md).

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, Select};
use futures_util::{stream, StreamExt};
use messaging_aws::{table, MessagingTable, NewConversation};
use messaging_core::shards::{shard_of, Subscribed};
use messaging_core::{ChannelKind, ConversationId, Role, TenantId, UserId};
use serde_json::{json, Value};
use test_support::{conversation, keys, Client, TestStack};

const TENANT: &str = "bigco";

/// Items in one partition (a COUNT Query, paged).
async fn count(stack: &TestStack, pk: &str) -> u64 {
    let (mut total, mut start) = (0, None);
    loop {
        let page = stack
            .dynamodb
            .query()
            .table_name(&stack.table_name)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .select(Select::Count)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        total += page.count() as u64;
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return total,
        }
    }
}

/// The members' connections, opened together: the connect handler for each (token, registry,
/// presence, subscriptions), 64 at a time.
async fn storm(stack: &TestStack, users: &[String]) -> Vec<Client> {
    stream::iter(users)
        .map(|u| stack.connect_as(TENANT, u, Role::User))
        .buffer_unordered(64)
        .collect()
        .await
}

/// A conversation of `members` members (the owner first) created through the table, the rest
/// added one by one as the server API adds them: their count sizes the shards.
async fn conversation_of(table: &MessagingTable, id: &str, members: usize) -> Vec<String> {
    let tenant = TenantId::parse(TENANT).unwrap();
    let c = ConversationId::parse(id).unwrap();
    let owner = UserId::parse("owner").unwrap();
    table
        .create_conversation(&NewConversation {
            tenant: tenant.clone(),
            conversation: c.clone(),
            kind: ChannelKind::General,
            title: Some("All hands".into()),
            created_by: owner.clone(),
            members: vec![],
            now: messaging_core::time::now_millis(),
        })
        .await
        .unwrap();
    let users: Vec<String> = (1..members).map(|i| format!("member{i:05}")).collect();
    let added: Vec<_> = stream::iter(&users)
        .map(|u| {
            let (tenant, c, owner) = (&tenant, &c, &owner);
            async move {
                table
                    .add_member(tenant, c, &UserId::parse(u).unwrap(), owner, 0)
                    .await
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(added.iter().all(Result::is_ok));
    users
}

/// The demonstration of docs/scale.md, "Shards on moto": in CI 1,200 members over shards of
/// 400 (3 shards); `STACKPRO_SHARD_DEMO_MEMBERS=5000 STACKPRO_SHARD_DEMO_SIZE=2000` runs the recorded one
/// (the production shard size; about 3 minutes on moto).
#[tokio::test]
async fn a_large_conversation_takes_a_connect_storm_over_its_shards_and_each_member_gets_a_message_once(
) {
    let setting = |name: &str, default: u64| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let members = setting("STACKPRO_SHARD_DEMO_MEMBERS", 1_200) as usize;
    let size = setting("STACKPRO_SHARD_DEMO_SIZE", 400) as u32;
    let stack = TestStack::new().await;
    let table =
        MessagingTable::new(stack.dynamodb.clone(), &stack.table_name).with_shard_size(size);
    let started = std::time::Instant::now();
    let users = conversation_of(&table, "all-hands", members).await;
    let added_in = started.elapsed();
    eprintln!("{members} members added in {added_in:?}");
    let tenant = TenantId::parse(TENANT).unwrap();
    let all_hands = conversation("all-hands");
    let sizing = table
        .sizing(&tenant, std::slice::from_ref(&all_hands))
        .await
        .unwrap()[&all_hands];
    let shards = messaging_core::shards::shards_for(members as u64, size);
    assert!(shards >= 3, "the demonstration spreads over several shards");
    assert_eq!(
        (sizing.members, sizing.shard_size, sizing.shards()),
        (members as u64, size, shards)
    );

    // The morning storm: every member connects at once.
    let owner = stack.connect_as(TENANT, "owner", Role::Owner).await;
    let started = std::time::Instant::now();
    let clients = storm(&stack, &users).await;
    let storm_in = started.elapsed();
    eprintln!("storm of {} connects in {storm_in:?}", clients.len());
    let k = table::tenant(&tenant);
    let mut per_shard = Vec::new();
    for shard in 0..shards {
        // The sizing item is in shard 0's partition beside its subscriptions.
        let items = count(&stack, &k.subscriptions_pk(&all_hands, shard)).await;
        per_shard.push(items - u64::from(shard == 0));
    }
    assert_eq!(per_shard.iter().sum::<u64>(), members as u64);
    // Each shard within 15 % of its even share (a fair hash: about 3 standard deviations).
    let share = members as u64 / u64::from(shards);
    for items in &per_shard {
        assert!(
            items.abs_diff(share) * 100 <= share * 15,
            "{per_shard:?} against {share} a shard"
        );
    }
    // Nothing of the storm's subscriptions landed in the tenant's partition, and each
    // connection's registry names the shard its subscription is in.
    let tenant_items = stack.snapshot().await;
    let legacy = keys(TENANT).prefix(|_| "CONVERSATION#all-hands#CONN#".to_owned());
    assert!(!tenant_items.keys().any(|key| key.starts_with(&legacy)));
    for client in clients.iter().take(50) {
        let registry = &tenant_items
            [&test_support::item_name(&test_support::connection_key(client.connection.as_str()))];
        let recorded: Vec<Subscribed> = registry["subscriptions"]
            .as_ss()
            .unwrap()
            .iter()
            .map(|s| Subscribed::parse(s).unwrap())
            .collect();
        assert_eq!(
            recorded,
            vec![Subscribed {
                conversation: all_hands.clone(),
                shard: shard_of(&client.connection, shards),
            }]
        );
        // Too large to hear its members come online (n connects would owe n² deliveries).
        assert_eq!(
            registry["quiet"].as_ss().unwrap(),
            &vec!["all-hands".to_owned()]
        );
    }

    // The storm queued nothing: presence changes are not pushed to a conversation this large.
    assert!(stack.events.receive(0).await.unwrap().is_none());

    // One message: route posts shard 0's first page itself and splits the rest; the
    // broadcast function posts each shard in its own message group.
    stack.gateway.take();
    let message = json!({ "type": "CHAT_MESSAGE", "conversationId": "all-hands", "content": { "text": "Good morning, everyone" } });
    let (_, ack) = stack.send(&owner, &message).await;
    assert_eq!(ack["type"], "ACK", "{ack}");
    let seq = ack["seq"].as_u64().unwrap();
    let started = std::time::Instant::now();
    let mut groups = BTreeMap::new();
    while let Some(event) = stack.events.receive(0).await.unwrap() {
        for record in &event.records {
            *groups
                .entry(record.attributes["MessageGroupId"].clone())
                .or_insert(0) += 1;
        }
        let response = messaging_handlers::broadcast::handle(&stack.broadcast, event.clone()).await;
        assert!(response.batch_item_failures.is_empty());
        stack.events.complete(&event, &response).await.unwrap();
    }
    let fanned_out_in = started.elapsed();
    // Route posted shard 0's first page itself; shard 0's next page went to the
    // conversation's group, each other shard to a job in a group of its own.
    let mut expected: Vec<String> = (1..shards)
        .map(|s| format!("{TENANT}#all-hands#SHARD#{s}"))
        .collect();
    if per_shard[0] > messaging_handlers::config::DEFAULT_DIRECT_FANOUT as u64 {
        expected.insert(0, format!("{TENANT}#all-hands"));
    }
    assert_eq!(groups.keys().cloned().collect::<Vec<_>>(), expected);
    let posts = stack.gateway.take();
    let mut received: HashMap<&str, Vec<Value>> = HashMap::new();
    for (connection, body) in &posts {
        received
            .entry(connection.as_str())
            .or_default()
            .extend(test_support::unbatched(serde_json::from_str(body).unwrap()));
    }
    // Every member's connection got the message exactly once; the sender's got its ACK.
    assert_eq!(
        received.len(),
        members - 1,
        "{} connections reached",
        received.len()
    );
    for client in &clients {
        let frames = &received[client.connection.as_str()];
        assert_eq!(frames.len(), 1, "{}: {frames:?}", client.connection);
        assert_eq!(frames[0]["type"], "NEW_MESSAGE");
        assert_eq!(frames[0]["data"]["seq"], seq);
    }
    assert!(!received.contains_key(owner.connection.as_str()));
    assert_eq!(
        posts.len(),
        members - 1,
        "one post per connection, none twice"
    );
    println!(
        "| {members} | {size} | {shards} | {per_shard:?} | {} in {:.1} s | {} posts, {} jobs in {} groups, {:.1} s | {:.1} s |",
        clients.len(),
        storm_in.as_secs_f64(),
        posts.len(),
        groups.values().sum::<usize>(),
        groups.len(),
        fanned_out_in.as_secs_f64(),
        added_in.as_secs_f64(),
    );
}
