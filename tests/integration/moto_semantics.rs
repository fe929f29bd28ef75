//! The project's moto patches (`infra/local/moto_server.py`: a Query reads one partition's
//! key range, a transaction saves only the items it touches) keep DynamoDB's semantics: a
//! seeded random run of puts, deletes, index-key updates and transactions (half of them
//! cancelled) checks every Query — every key condition, both directions, small limits, paged
//! with ExclusiveStartKey, on the table and on a GSI — and every item against a model.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, ConditionCheck, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ScalarAttributeType,
    TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;

/// The model: (PK, SK) → (version, GSI1PK, GSI1SK).
type Model = BTreeMap<(String, String), (u64, Option<String>, String)>;

/// A small deterministic generator (no dependency, same run every time).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}

async fn fresh_table(client: &Client) -> String {
    let name = format!("moto-semantics-{}", uuid::Uuid::new_v4().simple());
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(&name)
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .attribute_definitions(attr("PK"))
        .attribute_definitions(attr("SK"))
        .attribute_definitions(attr("GSI1PK"))
        .attribute_definitions(attr("GSI1SK"))
        .key_schema(key("PK", KeyType::Hash))
        .key_schema(key("SK", KeyType::Range))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("GSI1")
                .key_schema(key("GSI1PK", KeyType::Hash))
                .key_schema(key("GSI1SK", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    name
}

fn item(pk: &str, sk: &str, v: u64, gsi: &Option<String>) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("PK".to_owned(), s(pk)),
        ("SK".to_owned(), s(sk)),
        ("v".to_owned(), AttributeValue::N(v.to_string())),
    ]);
    if let Some(g) = gsi {
        item.insert("GSI1PK".into(), s(g));
        // Unique per item, so the index order has no ties.
        item.insert("GSI1SK".into(), s(&gsi1sk(pk, sk)));
    }
    item
}

fn gsi1sk(pk: &str, sk: &str) -> String {
    format!("{sk}|{pk}")
}

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("PK".to_owned(), s(pk)), ("SK".to_owned(), s(sk))])
}

/// A sort key condition: (expression over `#k`, values, predicate).
struct Condition {
    text: Option<String>,
    values: Vec<(String, String)>,
    test: Box<dyn Fn(&str) -> bool>,
}

fn condition(rng: &mut Rng, sk_of: impl Fn(u64) -> String) -> Condition {
    let a = sk_of(rng.below(40));
    let b = sk_of(rng.below(40));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let one = |op: &str, v: String, f: Box<dyn Fn(&str) -> bool>| Condition {
        text: Some(format!("#k {op} :a")),
        values: vec![(":a".into(), v)],
        test: f,
    };
    match rng.below(8) {
        0 => Condition {
            text: None,
            values: vec![],
            test: Box::new(|_| true),
        },
        1 => {
            let v = lo.clone();
            one("=", lo, Box::new(move |k| k == v))
        }
        2 => {
            let v = lo.clone();
            one("<", lo, Box::new(move |k| k < v.as_str()))
        }
        3 => {
            let v = lo.clone();
            one("<=", lo, Box::new(move |k| k <= v.as_str()))
        }
        4 => {
            let v = hi.clone();
            one(">", hi, Box::new(move |k| k > v.as_str()))
        }
        5 => {
            let v = lo.clone();
            one(">=", lo, Box::new(move |k| k >= v.as_str()))
        }
        6 => {
            let (l, h) = (lo.clone(), hi.clone());
            Condition {
                text: Some("#k BETWEEN :a AND :b".into()),
                values: vec![(":a".into(), lo), (":b".into(), hi)],
                test: Box::new(move |k| l.as_str() <= k && k <= h.as_str()),
            }
        }
        _ => {
            let prefix = ["A#", "K#0", "K#1", "Z#", "K#"][rng.below(5) as usize].to_owned();
            let p = prefix.clone();
            Condition {
                text: Some("begins_with(#k, :a)".into()),
                values: vec![(":a".into(), prefix)],
                test: Box::new(move |k| k.starts_with(p.as_str())),
            }
        }
    }
}

/// Every page of a Query, as (SK, version) in the order returned.
#[allow(clippy::too_many_arguments)]
async fn query_all(
    client: &Client,
    table: &str,
    index: Option<&str>,
    hash: &str,
    cond: &Condition,
    forward: bool,
    limit: i32,
) -> (Vec<(String, String, u64)>, usize) {
    let (hash_attr, range_attr) = match index {
        Some(_) => ("GSI1PK", "GSI1SK"),
        None => ("PK", "SK"),
    };
    let mut got = Vec::new();
    let mut pages = 0;
    let mut start = None;
    loop {
        let mut request = client
            .query()
            .table_name(table)
            .set_index_name(index.map(str::to_owned))
            .key_condition_expression(match &cond.text {
                Some(c) => format!("#h = :h AND {c}"),
                None => "#h = :h".into(),
            })
            .expression_attribute_names("#h", hash_attr)
            .expression_attribute_values(":h", s(hash))
            .scan_index_forward(forward)
            .limit(limit)
            .set_exclusive_start_key(start.take());
        if cond.text.is_some() {
            request = request.expression_attribute_names("#k", range_attr);
        }
        for (name, value) in &cond.values {
            request = request.expression_attribute_values(name, s(value));
        }
        let page = request.send().await.unwrap();
        pages += 1;
        for i in page.items() {
            got.push((
                i["PK"].as_s().unwrap().clone(),
                i["SK"].as_s().unwrap().clone(),
                i["v"].as_n().unwrap().parse().unwrap(),
            ));
        }
        match page.last_evaluated_key {
            Some(k) if !k.is_empty() => start = Some(k),
            _ => return (got, pages),
        }
        assert!(pages < 1_000, "paging does not end");
    }
}

#[tokio::test]
async fn patched_moto_keeps_dynamodb_query_order_paging_conditions_and_all_or_nothing_transactions()
{
    let sdk = messaging_devstack::sdk_config(&test_support::endpoint());
    let client = Client::new(&sdk);
    let table = fresh_table(&client).await;
    let mut rng = Rng(0x5eed_2026_1202);
    let mut model = Model::new();
    let mut version = 0u64;
    let partitions = ["P0", "P1", "P2"];
    let gsis = ["G0", "G1"];
    let sk_of = |n: u64| match n % 10 {
        0 => format!("A#{n:03}"),
        9 => format!("Z#{n:03}"),
        _ => format!("K#{n:03}"),
    };
    let (mut queries, mut cancelled, mut applied) = (0, 0, 0);
    for step in 0..500 {
        let pk = partitions[rng.below(3) as usize];
        let sk = sk_of(rng.below(40));
        let gsi = (rng.below(3) > 0).then(|| gsis[rng.below(2) as usize].to_owned());
        version += 1;
        match rng.below(10) {
            0..=3 => {
                client
                    .put_item()
                    .table_name(&table)
                    .set_item(Some(item(pk, &sk, version, &gsi)))
                    .send()
                    .await
                    .unwrap();
                model.insert((pk.into(), sk.clone()), (version, gsi, gsi1sk(pk, &sk)));
            }
            4 => {
                client
                    .delete_item()
                    .table_name(&table)
                    .set_key(Some(key(pk, &sk)))
                    .send()
                    .await
                    .unwrap();
                model.remove(&(pk.into(), sk.clone()));
            }
            5 | 6 => {
                // Move an item to another index partition, or out of the index (an update
                // of a missing item creates it, as DynamoDB does).
                let request = client
                    .update_item()
                    .table_name(&table)
                    .set_key(Some(key(pk, &sk)))
                    .expression_attribute_values(":v", AttributeValue::N(version.to_string()));
                let request = match &gsi {
                    Some(g) => request
                        .update_expression("SET v = :v, GSI1PK = :g, GSI1SK = :gs")
                        .expression_attribute_values(":g", s(g))
                        .expression_attribute_values(":gs", s(&gsi1sk(pk, &sk))),
                    None => request.update_expression("SET v = :v REMOVE GSI1PK, GSI1SK"),
                };
                request.send().await.unwrap();
                model.insert((pk.into(), sk.clone()), (version, gsi, gsi1sk(pk, &sk)));
            }
            _ => {
                // A transaction: a put, an update and a delete of three distinct keys, and a
                // condition check that fails half the time.
                let keys: Vec<String> = {
                    let mut k = Vec::new();
                    while k.len() < 4 {
                        let c = sk_of(rng.below(40));
                        if !k.contains(&c) {
                            k.push(c);
                        }
                    }
                    k
                };
                let fail = rng.below(2) == 0;
                let check_exists = model.contains_key(&(pk.to_owned(), keys[3].clone()));
                let put = Put::builder()
                    .table_name(&table)
                    .set_item(Some(item(pk, &keys[0], version, &gsi)))
                    .build()
                    .unwrap();
                let update = Update::builder()
                    .table_name(&table)
                    .set_key(Some(key(pk, &keys[1])))
                    .update_expression("SET v = :v, GSI1PK = :g, GSI1SK = :gs")
                    .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
                    .expression_attribute_values(":g", s("G1"))
                    .expression_attribute_values(":gs", s(&gsi1sk(pk, &keys[1])))
                    .build()
                    .unwrap();
                let delete = Delete::builder()
                    .table_name(&table)
                    .set_key(Some(key(pk, &keys[2])))
                    .build()
                    .unwrap();
                // Fails when the item's presence is the opposite of what is required.
                let wanted_present = if fail { !check_exists } else { check_exists };
                let check = ConditionCheck::builder()
                    .table_name(&table)
                    .set_key(Some(key(pk, &keys[3])))
                    .condition_expression(if wanted_present {
                        "attribute_exists(PK)"
                    } else {
                        "attribute_not_exists(PK)"
                    })
                    .build()
                    .unwrap();
                let result = client
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().put(put).build())
                    .transact_items(TransactWriteItem::builder().update(update).build())
                    .transact_items(TransactWriteItem::builder().delete(delete).build())
                    .transact_items(TransactWriteItem::builder().condition_check(check).build())
                    .send()
                    .await;
                if fail {
                    assert!(
                        result.is_err(),
                        "step {step}: the failing check was applied"
                    );
                    cancelled += 1;
                } else {
                    result.unwrap_or_else(|e| panic!("step {step}: {e:?}"));
                    applied += 1;
                    model.insert(
                        (pk.into(), keys[0].clone()),
                        (version, gsi.clone(), gsi1sk(pk, &keys[0])),
                    );
                    model.insert(
                        (pk.into(), keys[1].clone()),
                        (version, Some("G1".into()), gsi1sk(pk, &keys[1])),
                    );
                    model.remove(&(pk.into(), keys[2].clone()));
                }
            }
        }
        if step % 5 == 4 {
            queries += 1;
            let forward = rng.below(2) == 0;
            let limit = 1 + rng.below(12) as i32;
            let hash = partitions[rng.below(3) as usize];
            let cond = condition(&mut rng, sk_of);
            let (got, _) = query_all(&client, &table, None, hash, &cond, forward, limit).await;
            let mut want: Vec<(String, String, u64)> = model
                .iter()
                .filter(|((p, k), _)| p == hash && (cond.test)(k))
                .map(|((p, k), (v, _, _))| (p.clone(), k.clone(), *v))
                .collect();
            if !forward {
                want.reverse();
            }
            assert_eq!(
                got, want,
                "step {step}: table Query {hash} {:?} forward={forward} limit={limit}",
                cond.text
            );

            let g = gsis[rng.below(2) as usize];
            let cond = condition(&mut rng, |n| {
                gsi1sk(partitions[(n % 3) as usize], &sk_of(n))
            });
            let (got, _) = query_all(&client, &table, Some("GSI1"), g, &cond, forward, limit).await;
            let mut want: Vec<(String, (String, String, u64))> = model
                .iter()
                .filter(|(_, (_, gp, gs))| gp.as_deref() == Some(g) && (cond.test)(gs))
                .map(|((p, k), (v, _, gs))| (gs.clone(), (p.clone(), k.clone(), *v)))
                .collect();
            want.sort();
            let mut want: Vec<(String, String, u64)> = want.into_iter().map(|(_, x)| x).collect();
            if !forward {
                want.reverse();
            }
            assert_eq!(
                got, want,
                "step {step}: GSI1 Query {g} {:?} forward={forward} limit={limit}",
                cond.text
            );
        }
    }
    // And every item is exactly the model's.
    for hash in partitions {
        let all = Condition {
            text: None,
            values: vec![],
            test: Box::new(|_| true),
        };
        let (got, _) = query_all(&client, &table, None, hash, &all, true, 1_000).await;
        let want: Vec<(String, String, u64)> = model
            .iter()
            .filter(|((p, _), _)| p == hash)
            .map(|((p, k), (v, _, _))| (p.clone(), k.clone(), *v))
            .collect();
        assert_eq!(got, want, "partition {hash} at the end");
    }
    eprintln!("{queries} rounds of queries, {applied} transactions applied, {cancelled} cancelled, {} items", model.len());
    assert!(cancelled > 10 && applied > 10 && queries > 50);
}
