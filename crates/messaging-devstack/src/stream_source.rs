//! The DynamoDB stream event source mapping, as Lambda runs it: read the table's stream shard
//! by shard from the start (`TRIM_HORIZON`), keep the records the mapping's filter patterns
//! pass, hand them to the function in batches as the DynamoDB event it receives on AWS, and
//! after a reported batch item failure hand the records from that one on again.
//!
//! It speaks the DynamoDB Streams JSON protocol to the emulator directly (four operations;
//! their records already are the event's records), so the local stack needs no SDK crate for
//! them. Locally only: on AWS the event source mapping does this.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::StreamEventSourceDefinition;

/// Times a failed record is handed over again before it is dropped (the template's
/// `MaximumRetryAttempts`; the records are then only logged, as an on-failure destination
/// would get them).
pub const MAX_RETRIES: u32 = 3;

pub struct StreamEventSource {
    /// `host:port` of the emulator.
    host: String,
    stream_arn: String,
    definition: StreamEventSourceDefinition,
    filters: Vec<Value>,
    /// Access key id and secret the calls are signed with.
    credentials: (String, String),
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The next iterator of each shard seen so far (`None`: the shard is closed and read).
    iterators: BTreeMap<String, Option<String>>,
    /// Records handed over before that must be handed over again, and how often they were.
    retry: Vec<Value>,
    attempts: u32,
    /// The stream's shards, and when they were listed (listed again every
    /// [`SHARDS_LISTED_EVERY`]: a shard splits only now and then).
    shards: Vec<String>,
    listed: Option<std::time::Instant>,
}

/// How often the shards are listed again.
const SHARDS_LISTED_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl StreamEventSource {
    /// The mapping of `definition` on the stream `stream_arn` of an emulator at `endpoint`
    /// (`http://host:port`).
    pub fn new(
        endpoint: &str,
        stream_arn: impl Into<String>,
        definition: StreamEventSourceDefinition,
    ) -> anyhow::Result<Self> {
        let host = endpoint
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("the stream emulator must be a plain http:// endpoint"))?
            .trim_end_matches('/')
            .to_owned();
        let filters = definition
            .filter_patterns
            .iter()
            .map(|p| serde_json::from_str(p).context("filter pattern is not JSON"))
            .collect::<anyhow::Result<Vec<Value>>>()?;
        Ok(Self {
            host,
            stream_arn: stream_arn.into(),
            definition,
            filters,
            credentials: ("local".into(), "local".into()),
            state: Mutex::new(State::default()),
        })
    }

    /// Signs the calls as this emulator user (the IAM-enforcing emulator checks signatures).
    pub fn with_credentials(mut self, access_key_id: &str, secret_access_key: &str) -> Self {
        self.credentials = (access_key_id.to_owned(), secret_access_key.to_owned());
        self
    }

    pub fn definition(&self) -> &StreamEventSourceDefinition {
        &self.definition
    }

    /// Whether `event` is a full batch: Lambda invokes again at once only then; otherwise it
    /// waits for the next batching window.
    pub fn is_full(&self, event: &Value) -> bool {
        event["Records"].as_array().is_some_and(|r| {
            r.len() >= usize::try_from(self.definition.batch_size.max(1)).unwrap_or(1)
        })
    }

    /// The next batch, as the function's event (`{"Records": [...]}`), or `None` when the
    /// stream has nothing new that passes the filters.
    pub async fn next_batch(&self) -> anyhow::Result<Option<Value>> {
        let mut state = self.state.lock().await;
        let limit = usize::try_from(self.definition.batch_size.max(1)).unwrap_or(100);
        let mut records: Vec<Value> = std::mem::take(&mut state.retry);
        if records.is_empty() {
            state.attempts = 0;
        }
        if state
            .listed
            .is_none_or(|at| at.elapsed() >= SHARDS_LISTED_EVERY)
        {
            state.shards = self.shards().await?;
            state.listed = Some(std::time::Instant::now());
        }
        for shard in state.shards.clone() {
            if records.len() >= limit {
                break;
            }
            if !state.iterators.contains_key(&shard) {
                let iterator = self
                    .call(
                        "GetShardIterator",
                        json!({ "StreamArn": self.stream_arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON" }),
                    )
                    .await?["ShardIterator"]
                    .as_str()
                    .map(str::to_owned);
                state.iterators.insert(shard.clone(), iterator);
            }
            while records.len() < limit {
                let Some(Some(iterator)) = state.iterators.get(&shard).cloned() else {
                    break;
                };
                let want = (limit - records.len()).min(1000);
                let page = self
                    .call(
                        "GetRecords",
                        json!({ "ShardIterator": iterator, "Limit": want }),
                    )
                    .await?;
                let got = page["Records"].as_array().cloned().unwrap_or_default();
                let next = page["NextShardIterator"].as_str().map(str::to_owned);
                let empty = got.is_empty();
                state.iterators.insert(shard.clone(), next);
                records.extend(
                    got.into_iter()
                        .map(|mut r| {
                            r["eventSourceARN"] = json!(self.stream_arn);
                            r
                        })
                        .filter(|r| self.passes(r)),
                );
                if empty {
                    break;
                }
            }
        }
        if records.is_empty() {
            return Ok(None);
        }
        Ok(Some(json!({ "Records": records })))
    }

    /// After the function answered `response` for `event`: the records from the first one it
    /// reported as failed (by `dynamodb.SequenceNumber`) are handed over again next time, up
    /// to [`MAX_RETRIES`] times. A function error fails the whole batch.
    pub async fn complete(&self, event: &Value, response: Result<&Value, ()>) {
        let records = event["Records"].as_array().cloned().unwrap_or_default();
        let failed_from = match response {
            Err(()) => Some(0),
            Ok(response) if self.definition.report_batch_item_failures => response
                ["batchItemFailures"]
                .as_array()
                .and_then(|f| f.first())
                .and_then(|f| f["itemIdentifier"].as_str())
                .and_then(|sequence| {
                    records
                        .iter()
                        .position(|r| r["dynamodb"]["SequenceNumber"].as_str() == Some(sequence))
                }),
            Ok(_) => None,
        };
        let mut state = self.state.lock().await;
        if let Some(from) = failed_from {
            state.attempts += 1;
            if state.attempts > MAX_RETRIES {
                tracing::warn!(
                    records = records.len() - from,
                    "stream records still failing after {MAX_RETRIES} retries: dropped"
                );
                state.attempts = 0;
            } else {
                state.retry = records[from..].to_vec();
            }
        }
    }

    /// Whether a record passes the mapping's filters (no filter: every record).
    pub fn passes(&self, record: &Value) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| matches_pattern(f, record))
    }

    async fn shards(&self) -> anyhow::Result<Vec<String>> {
        let description = self
            .call("DescribeStream", json!({ "StreamArn": self.stream_arn }))
            .await?;
        Ok(description["StreamDescription"]["Shards"]
            .as_array()
            .map(|shards| {
                shards
                    .iter()
                    .filter_map(|s| s["ShardId"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// One DynamoDB Streams call (JSON 1.0 protocol, SigV4-signed) to the emulator.
    async fn call(&self, operation: &str, body: Value) -> anyhow::Result<Value> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let body = body.to_string();
        let target = format!("DynamoDBStreams_20120810.{operation}");
        let mut headers = vec![
            ("host".to_owned(), self.host.clone()),
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.0".to_owned(),
            ),
            ("x-amz-target".to_owned(), target),
        ];
        let identity = aws_credential_types::Credentials::new(
            &self.credentials.0,
            &self.credentials.1,
            None,
            None,
            "stackpro-local",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("dynamodb")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let url = format!("http://{}/", self.host);
        let signable = SignableRequest::new(
            "POST",
            &url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body.as_bytes()),
        )?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        for (name, value) in instructions.headers() {
            headers.push((name.to_owned(), value.to_owned()));
        }
        let mut head = String::from("POST / HTTP/1.1\r\nConnection: close\r\n");
        for (name, value) in &headers {
            // Title-Case, as the SDK sends them (the emulator's admin check reads
            // `Authorization` by its exact name).
            let name: Vec<String> = name
                .split('-')
                .map(|part| {
                    let mut chars = part.chars();
                    chars.next().map_or_else(String::new, |first| {
                        first.to_ascii_uppercase().to_string() + chars.as_str()
                    })
                })
                .collect();
            head.push_str(&format!("{}: {value}\r\n", name.join("-")));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        let mut stream = TcpStream::connect(&self.host)
            .await
            .with_context(|| format!("connecting to {}", self.host))?;
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let text = String::from_utf8_lossy(&response);
        let (status_line, rest) = text.split_once("\r\n").unwrap_or((&text, ""));
        let (_, payload) = rest.split_once("\r\n\r\n").unwrap_or(("", rest));
        if !status_line.contains(" 200 ") {
            bail!("DynamoDB Streams {operation}: {status_line}: {payload}");
        }
        serde_json::from_str(payload)
            .with_context(|| format!("DynamoDB Streams {operation}: answer is not JSON"))
    }
}

/// The subset of Lambda's event filtering the template uses: a pattern is an object whose
/// keys must be present in the record with a matching value; a leaf is a list of allowed
/// values — a plain value (equal), `{"exists": true|false}` or `{"prefix": "…"}`.
pub fn matches_pattern(pattern: &Value, record: &Value) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(key, sub)| match sub {
            Value::Array(allowed) => {
                let value = record.get(key);
                allowed.iter().any(|rule| match rule {
                    Value::Object(rule) => match (rule.get("exists"), rule.get("prefix")) {
                        (Some(Value::Bool(exists)), _) => value.is_some() == *exists,
                        (_, Some(Value::String(prefix))) => value
                            .and_then(Value::as_str)
                            .is_some_and(|v| v.starts_with(prefix.as_str())),
                        _ => false,
                    },
                    plain => value == Some(plain),
                })
            }
            nested => record
                .get(key)
                .is_some_and(|inner| matches_pattern(nested, inner)),
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_patterns_match_as_lambda_applies_them() {
        let pattern: Value = serde_json::from_str(
            r#"{"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"messageId": {"S": [{"exists": true}]}, "SK": {"S": [{"prefix": "CONVERSATION#"}]}}}}"#,
        )
        .unwrap();
        let record = |event: &str, image: Value| json!({ "eventName": event, "dynamodb": { "NewImage": image } });
        let message = json!({ "messageId": { "S": "m1" }, "SK": { "S": "CONVERSATION#c#MSG#1" } });
        assert!(matches_pattern(
            &pattern,
            &record("INSERT", message.clone())
        ));
        assert!(matches_pattern(
            &pattern,
            &record("MODIFY", message.clone())
        ));
        assert!(!matches_pattern(&pattern, &record("REMOVE", message)));
        assert!(!matches_pattern(
            &pattern,
            &record("INSERT", json!({ "SK": { "S": "CONVERSATION#c" } }))
        ));
        assert!(!matches_pattern(
            &pattern,
            &record(
                "INSERT",
                json!({ "messageId": { "S": "m" }, "SK": { "S": "USER#u" } })
            )
        ));
        let absent: Value =
            serde_json::from_str(r#"{"dynamodb": {"NewImage": {"ttl": [{"exists": false}]}}}"#)
                .unwrap();
        assert!(matches_pattern(&absent, &record("INSERT", json!({}))));
        assert!(!matches_pattern(
            &absent,
            &record("INSERT", json!({ "ttl": { "N": "1" } }))
        ));
    }
}
