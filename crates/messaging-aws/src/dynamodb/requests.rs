//! Every DynamoDB request helper the table operations share: attribute values and keys,
//! GetItem, paged Queries (on the table and on GSI1), batched reads and writes that retry
//! what DynamoDB left unprocessed, and transaction actions. Keys come from [`super::table`];
//! nothing here spells one.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, Put, PutRequest, TransactWriteItem,
    WriteRequest,
};

use super::table::{Key, GSI1, GSI1PK, GSI1SK, PK, SK};
use super::MessagingTable;
use crate::error::{applied, classify, corrupt, AwsError};

/// BatchWriteItem's limit.
pub(crate) const BATCH_SIZE: usize = 25;
/// BatchGetItem's limit.
const BATCH_GET_SIZE: usize = 100;
/// Rounds of resubmitting unprocessed items before giving up (with backoff between).
const UNPROCESSED_ROUNDS: u32 = 6;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub(crate) fn n(value: impl Into<i128>) -> AttributeValue {
    AttributeValue::N(value.into().to_string())
}

/// The `PK`/`SK` map of a key.
pub(crate) fn key_map(key: &Key) -> Item {
    HashMap::from([(PK.to_owned(), s(&key.pk)), (SK.to_owned(), s(&key.sk))])
}

/// The table key of an item (or of a keys-only index entry, which projects it).
pub(crate) fn key_of(item: &Item) -> Option<Key> {
    Some(Key {
        pk: item.get(PK)?.as_s().ok()?.clone(),
        sk: item.get(SK)?.as_s().ok()?.clone(),
    })
}

/// The GSI1 sort key of an index entry.
pub(crate) fn gsi1sk_of(item: &Item) -> Option<&str> {
    item.get(GSI1SK)?.as_s().ok().map(String::as_str)
}

pub(crate) fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> AwsError {
    AwsError::Failed(format!("request could not be built: {error}"))
}

/// Epoch seconds (the `ttl` attribute's unit) of an epoch-millisecond instant.
pub(crate) fn epoch_seconds(millis: i64) -> i64 {
    millis.div_euclid(1000)
}

/// The `ttl` of an item that should live `seconds` from now.
pub(crate) fn expires_in(seconds: i64) -> i64 {
    epoch_seconds(messaging_core::time::now_millis()) + seconds
}

/// What a paged Query read, and what it cost.
#[derive(Debug, Default)]
pub(crate) struct QueryPages {
    pub items: Vec<Item>,
    pub pages: usize,
    pub consumed_read_units: f64,
}

/// Every item as a `T`, or `Corrupt` naming `what` at the first that is not one.
pub(crate) fn decode_all<T: serde::de::DeserializeOwned>(
    items: Vec<Item>,
    what: &str,
) -> Result<Vec<T>, AwsError> {
    items
        .into_iter()
        .map(|item| serde_dynamo::from_item(item).map_err(|e| corrupt(what, e)))
        .collect()
}

/// An item's size as DynamoDB bills it: each attribute's name and value (strings and
/// binaries their bytes, numbers about one byte per two digits plus one, booleans and nulls
/// one, lists and maps 3 bytes plus one per element and the elements, sets their elements).
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn number_size(n: &str) -> usize {
    let digits = n.bytes().filter(u8::is_ascii_digit).count().max(1);
    1 + digits.div_ceil(2)
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, e)| 1 + k.len() + value_size(e))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// What reading `items` in one Query page costs: their total size in 4 KB units (rounded up
/// once per page), half for an eventually consistent read. (moto answers a flat 1.0 whatever
/// it read; this is DynamoDB's rule.)
pub fn query_read_units(items: &[Item], consistent: bool) -> f64 {
    let bytes: usize = items.iter().map(item_size).sum();
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

/// The key condition "partition `pk`, sort key beginning with `prefix`".
pub(crate) fn with_prefix(query: QueryFluentBuilder, pk: &str, prefix: &str) -> QueryFluentBuilder {
    query
        .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
        .expression_attribute_names("#pk", PK)
        .expression_attribute_names("#sk", SK)
        .expression_attribute_values(":pk", s(pk))
        .expression_attribute_values(":prefix", s(prefix))
}

impl MessagingTable {
    /// Runs the Query that `build` describes (key condition, index, consistency) to its last
    /// page, counting pages and consumed read units.
    pub(crate) async fn query_all(
        &self,
        operation: &str,
        build: impl Fn(QueryFluentBuilder) -> QueryFluentBuilder,
    ) -> Result<QueryPages, AwsError> {
        let mut result = QueryPages::default();
        let mut start: Option<Item> = None;
        loop {
            let query = build(self.client.query().table_name(&self.name));
            let consistent = query.get_consistent_read().unwrap_or(false);
            let page = query
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify(operation, e))?;
            result.pages += 1;
            let items = page.items.unwrap_or_default();
            result.consumed_read_units += query_read_units(&items, consistent);
            result.items.extend(items);
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(result),
            }
        }
    }

    /// All items of partition `pk` whose sort key starts with `prefix`.
    pub(crate) async fn query_prefix(
        &self,
        pk: &str,
        prefix: &str,
        consistent: bool,
        operation: &str,
    ) -> Result<Vec<Item>, AwsError> {
        let pages = self
            .query_all(operation, |q| {
                with_prefix(q, pk, prefix).consistent_read(consistent)
            })
            .await?;
        Ok(pages.items)
    }

    /// All GSI1 entries of partition `pk` (whose sort key starts with `prefix`, when given).
    /// GSI1 projects keys only: the entries carry the table key and the GSI1 key.
    pub(crate) async fn query_gsi1(
        &self,
        pk: &str,
        prefix: Option<&str>,
        operation: &str,
    ) -> Result<Vec<Item>, AwsError> {
        let pages = self
            .query_all(operation, |q| {
                let q = q
                    .index_name(GSI1)
                    .expression_attribute_names("#pk", GSI1PK)
                    .expression_attribute_values(":pk", s(pk));
                match prefix {
                    None => q.key_condition_expression("#pk = :pk"),
                    Some(prefix) => q
                        .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                        .expression_attribute_names("#sk", GSI1SK)
                        .expression_attribute_values(":prefix", s(prefix)),
                }
            })
            .await?;
        Ok(pages.items)
    }

    /// The item with this key, if any; an eventually consistent read (half a read unit) may
    /// miss a write of the last second.
    pub(crate) async fn read_item(
        &self,
        key: &Key,
        operation: &str,
        consistent: bool,
    ) -> Result<Option<Item>, AwsError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key_map(key)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| classify(operation, e))?;
        Ok(output.item)
    }

    /// The item with this key as a `T` (consistent read), if any; `Corrupt` naming `what`
    /// when it is not one.
    pub(crate) async fn get_as<T: serde::de::DeserializeOwned>(
        &self,
        key: &Key,
        what: &str,
    ) -> Result<Option<T>, AwsError> {
        self.read_as(key, what, true).await
    }

    /// [`Self::get_as`], eventually consistent unless `consistent`.
    pub(crate) async fn read_as<T: serde::de::DeserializeOwned>(
        &self,
        key: &Key,
        what: &str,
        consistent: bool,
    ) -> Result<Option<T>, AwsError> {
        self.read_item(key, &format!("GetItem({what})"), consistent)
            .await?
            .map(|item| serde_dynamo::from_item(item).map_err(|e| corrupt(what, e)))
            .transpose()
    }

    /// Whether an item with this key exists (consistent read of its key only).
    pub(crate) async fn exists(&self, key: &Key, operation: &str) -> Result<bool, AwsError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key_map(key)))
            .projection_expression("#pk")
            .expression_attribute_names("#pk", PK)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(operation, e))?;
        Ok(output.item.is_some())
    }

    /// Writes `item` (a `what`), replacing any item with its key.
    pub(crate) async fn put_item<T: serde::Serialize>(
        &self,
        item: &T,
        what: &str,
    ) -> Result<(), AwsError> {
        self.put(item, what, None).await.map(|_| ())
    }

    /// Writes `item` (a `what`) unless an item with its key exists: `false` then, and nothing
    /// is written.
    pub(crate) async fn put_new<T: serde::Serialize>(
        &self,
        item: &T,
        what: &str,
    ) -> Result<bool, AwsError> {
        self.put(item, what, Some("attribute_not_exists(PK)")).await
    }

    async fn put<T: serde::Serialize>(
        &self,
        item: &T,
        what: &str,
        condition: Option<&str>,
    ) -> Result<bool, AwsError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(
                serde_dynamo::to_item(item).map_err(|e| corrupt(what, e))?,
            ))
            .set_condition_expression(condition.map(str::to_owned))
            .send()
            .await;
        applied(&format!("PutItem({what})"), result)
    }

    /// The items with these keys (BatchGetItem, 100 keys a request, unprocessed keys
    /// retried), in no particular order; missing items are simply absent.
    pub(crate) async fn get_items(
        &self,
        keys: &[Key],
        consistent: bool,
    ) -> Result<Vec<Item>, AwsError> {
        self.get_items_projected(keys, consistent, None).await
    }

    /// As [`Self::get_items`], reading only the attributes `projection` names (a
    /// ProjectionExpression of plain attribute names).
    pub(crate) async fn get_items_projected(
        &self,
        keys: &[Key],
        consistent: bool,
        projection: Option<&str>,
    ) -> Result<Vec<Item>, AwsError> {
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_SIZE) {
            let mut pending = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(key_map).collect()))
                .consistent_read(consistent)
                .set_projection_expression(projection.map(str::to_owned))
                .build()
                .map_err(build_error)?;
            for round in 0..=UNPROCESSED_ROUNDS {
                if round == UNPROCESSED_ROUNDS {
                    return Err(AwsError::Unavailable(format!(
                        "BatchGetItem: keys still unprocessed after {UNPROCESSED_ROUNDS} rounds"
                    )));
                }
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(25 << round)).await;
                }
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.name, pending)
                    .send()
                    .await
                    .map_err(|e| classify("BatchGetItem", e))?;
                items.extend(
                    output
                        .responses
                        .and_then(|mut r| r.remove(&self.name))
                        .unwrap_or_default(),
                );
                match output
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.name))
                {
                    Some(rest) if !rest.keys.is_empty() => pending = rest,
                    _ => break,
                }
            }
        }
        Ok(items)
    }

    pub(crate) async fn put_items(&self, items: Vec<Item>) -> Result<(), AwsError> {
        let requests = items
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(build_error)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, AwsError>>()?;
        self.write_batches(requests).await
    }

    pub(crate) async fn delete_keys(&self, keys: &[Key]) -> Result<(), AwsError> {
        let requests = keys
            .iter()
            .map(|key| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key_map(key)))
                    .build()
                    .map_err(build_error)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, AwsError>>()?;
        self.write_batches(requests).await
    }

    async fn write_batches(&self, requests: Vec<WriteRequest>) -> Result<(), AwsError> {
        for chunk in requests.chunks(BATCH_SIZE) {
            let mut pending = chunk.to_vec();
            let mut round = 0;
            while !pending.is_empty() {
                if round == UNPROCESSED_ROUNDS {
                    return Err(AwsError::Unavailable(format!(
                        "BatchWriteItem: {} items still unprocessed after {UNPROCESSED_ROUNDS} rounds",
                        pending.len()
                    )));
                }
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(25 << round)).await;
                }
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.name, pending)
                    .send()
                    .await
                    .map_err(|e| classify("BatchWriteItem", e))?;
                pending = output
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.name))
                    .unwrap_or_default();
                round += 1;
            }
        }
        Ok(())
    }
}

/// One Put of a TransactWriteItems request, optionally conditional.
pub(crate) fn transact_put(
    table: &str,
    item: Item,
    condition: Option<&str>,
) -> Result<TransactWriteItem, AwsError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned));
    Ok(TransactWriteItem::builder()
        .put(put.build().map_err(build_error)?)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn an_item_is_sized_as_dynamodb_bills_it() {
        // "pk" + "abc", "n" + 123 (1 + 2 bytes), "ok" + a boolean.
        let flat = item(&[
            ("pk", s("abc")),
            ("n", n(123)),
            ("ok", AttributeValue::Bool(true)),
        ]);
        assert_eq!(item_size(&flat), 5 + 4 + 3);
        // A map: 3 bytes, and per element 1 byte, its name and its value.
        let nested = item(&[(
            "m",
            AttributeValue::M(HashMap::from([("a".to_owned(), s("xy"))])),
        )]);
        assert_eq!(item_size(&nested), 1 + 3 + (1 + 1 + 2));
        assert_eq!(
            item_size(&item(&[("l", AttributeValue::L(vec![s("x"), s("yz")]))])),
            1 + 3 + 2 + 3
        );
    }

    #[test]
    fn a_query_page_costs_its_size_in_4_kb_units_half_when_eventually_consistent() {
        let of = |bytes: usize| item(&[("v", s("x".repeat(bytes - 1)))]);
        assert_eq!(query_read_units(&[of(4096)], true), 1.0);
        assert_eq!(query_read_units(&[of(4096), of(1)], true), 2.0);
        assert_eq!(query_read_units(&[of(4096), of(1)], false), 1.0);
        // Reading nothing still costs the minimum.
        assert_eq!(query_read_units(&[], false), 0.5);
        // Rounded once per page, not per item.
        let small: Vec<Item> = (0..40).map(|_| of(100)).collect();
        assert_eq!(query_read_units(&small, true), 1.0);
    }
}
