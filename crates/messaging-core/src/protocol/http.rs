//! The HTTP API's requests (`GET /conversations`, `/conversations/{id}/messages`,
//! `/conversations/{id}/messages/{seq}/thread`, `/search`): each is the WebSocket read frame of
//! the same name, its fields taken from the path and the query string, and parsed by that
//! frame's own parser, so the two doors refuse exactly the same things. `GET /audit` (the
//! OWNER's audit log, [`ListAudit`]) has no frame: it is read over HTTP only. Fuzzed as
//! `fuzz/fuzz_targets/http_request.rs`.

use serde_json::{json, Map, Value};

use serde::Deserialize;

use super::{GetHistory, GetThread, ListConversations, Search};
use crate::audit::{DEFAULT_AUDIT_LIMIT, MAX_AUDIT_LIMIT};
use crate::error::{ErrorCode, ProtocolError};

/// A read the HTTP API serves.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpRead {
    Conversations(ListConversations),
    History(GetHistory),
    Thread(GetThread),
    Search(Search),
    Audit(ListAudit),
}

/// `GET /audit?limit&cursor`: a page of the tenant's audit log, newest first (OWNER only).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListAudit {
    #[serde(default = "default_audit_limit")]
    pub limit: u16,
    /// The `nextCursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

fn default_audit_limit() -> u16 {
    DEFAULT_AUDIT_LIMIT
}

impl ListAudit {
    pub fn from_value(value: &Value) -> Result<Self, ProtocolError> {
        let list: ListAudit = super::payload(value)?;
        if list.limit == 0 || list.limit > MAX_AUDIT_LIMIT {
            return Err(ProtocolError::new(
                ErrorCode::InvalidField,
                format!("limit must be 1 to {MAX_AUDIT_LIMIT}"),
            ));
        }
        Ok(list)
    }
}

/// Query parameters the reads take: (query name, frame field, whole number?).
const QUERY_FIELDS: [(&str, &str, bool); 4] = [
    ("limit", "limit", true),
    ("cursor", "cursor", false),
    ("sinceSeq", "sinceSeq", true),
    ("q", "query", false),
];

/// The query parameters [`parse_http_read`] reads: the reads' own, and the identity fields it
/// refuses (any other is ignored).
pub const HTTP_QUERY_PARAMETERS: [&str; 14] = [
    QUERY_FIELDS[0].0,
    QUERY_FIELDS[1].0,
    QUERY_FIELDS[2].0,
    QUERY_FIELDS[3].0,
    super::IDENTITY_FIELDS[0],
    super::IDENTITY_FIELDS[1],
    super::IDENTITY_FIELDS[2],
    super::IDENTITY_FIELDS[3],
    super::IDENTITY_FIELDS[4],
    super::IDENTITY_FIELDS[5],
    super::IDENTITY_FIELDS[6],
    super::IDENTITY_FIELDS[7],
    super::IDENTITY_FIELDS[8],
    super::IDENTITY_FIELDS[9],
];

/// The read that `method` on `path` asks for, with `query`'s (decoded) parameters; the first
/// value of a repeated parameter counts, unknown parameters are ignored (as API Gateway passes
/// any). `NOT_FOUND` for any other method or path, `INVALID_FIELD` naming the bad field.
pub fn parse_http_read(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
) -> Result<HttpRead, ProtocolError> {
    if method != "GET" {
        return Err(ProtocolError::new(
            ErrorCode::NotFound,
            "only GET is served",
        ));
    }
    if let Some((field, _)) = query
        .iter()
        .find(|(name, _)| super::IDENTITY_FIELDS.contains(name))
    {
        return Err(super::identity_field_refused(field));
    }
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let with = |pairs: &[(&str, Value)]| -> Result<Value, ProtocolError> {
        let mut fields: Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        for (name, field, numeric) in QUERY_FIELDS {
            let Some((_, value)) = query.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            let value = if numeric {
                let number: u64 = value.parse().map_err(|_| {
                    ProtocolError::new(
                        ErrorCode::InvalidField,
                        format!("{name} must be a whole number"),
                    )
                })?;
                json!(number)
            } else {
                json!(value)
            };
            fields.insert(field.to_owned(), value);
        }
        Ok(Value::Object(fields))
    };
    match segments.as_slice() {
        ["conversations"] => Ok(HttpRead::Conversations(ListConversations::from_value(
            &with(&[])?,
        )?)),
        ["conversations", conversation, "messages"] => Ok(HttpRead::History(
            GetHistory::from_value(&with(&[("conversationId", json!(conversation))])?)?,
        )),
        ["conversations", conversation, "messages", seq, "thread"] => {
            let seq: u64 = seq.parse().map_err(|_| {
                ProtocolError::new(ErrorCode::InvalidField, "seq must be a whole number")
            })?;
            Ok(HttpRead::Thread(GetThread::from_value(&with(&[
                ("conversationId", json!(conversation)),
                ("seq", json!(seq)),
            ])?)?))
        }
        ["search"] => Ok(HttpRead::Search(Search::from_value(&with(&[])?)?)),
        ["audit"] => {
            let mut fields = with(&[])?;
            // The reads' other parameters mean nothing here.
            if let Value::Object(map) = &mut fields {
                map.retain(|name, _| name == "limit" || name == "cursor");
            }
            Ok(HttpRead::Audit(ListAudit::from_value(&fields)?))
        }
        _ => Err(ProtocolError::new(
            ErrorCode::NotFound,
            format!("no resource at {}", truncated(path)),
        )),
    }
}

/// At most 200 bytes of `path` (on a char boundary) for an error message.
fn truncated(path: &str) -> &str {
    let mut end = path.len().min(200);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    &path[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(result: Result<HttpRead, ProtocolError>) -> ErrorCode {
        result.expect_err("refused").code
    }

    #[test]
    fn each_path_is_its_frame_and_anything_else_is_not_found() {
        assert!(matches!(
            parse_http_read("GET", "/conversations", &[("limit", "5")]),
            Ok(HttpRead::Conversations(_))
        ));
        assert!(matches!(
            parse_http_read("GET", "/conversations/c1/messages/", &[("sinceSeq", "3")]),
            Ok(HttpRead::History(_))
        ));
        assert!(matches!(
            parse_http_read("GET", "/conversations/c1/messages/7/thread", &[]),
            Ok(HttpRead::Thread(_))
        ));
        assert!(matches!(
            parse_http_read("GET", "/search", &[("q", "invoice"), ("q", "ignored")]),
            Ok(HttpRead::Search(_))
        ));
        assert_eq!(
            parse_http_read("GET", "/audit", &[("limit", "7"), ("q", "ignored")]),
            Ok(HttpRead::Audit(ListAudit {
                limit: 7,
                cursor: None
            }))
        );
        assert!(matches!(
            parse_http_read("GET", "/audit", &[]),
            Ok(HttpRead::Audit(ListAudit { limit: 50, .. }))
        ));
        assert_eq!(
            code(parse_http_read("GET", "/audit", &[("limit", "101")])),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(parse_http_read("GET", "/audit", &[("limit", "0")])),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(parse_http_read("POST", "/conversations", &[])),
            ErrorCode::NotFound
        );
        assert_eq!(
            code(parse_http_read("GET", "/nothing", &[])),
            ErrorCode::NotFound
        );
        assert_eq!(
            code(parse_http_read("GET", "/conversations", &[("limit", "-1")])),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(parse_http_read(
                "GET",
                "/conversations/c1/messages/x/thread",
                &[]
            )),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(parse_http_read("GET", "/conversations/a%23b/messages", &[])),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(parse_http_read(
                "GET",
                "/conversations",
                &[("clientId", "globex")]
            )),
            ErrorCode::InvalidField
        );
        let long = format!("/{}", "é".repeat(500));
        let e = parse_http_read("GET", &long, &[]).unwrap_err();
        assert!(e.message.len() < 260, "{}", e.message);
    }
}
