//! The server API's requests: what the portal's own backend (a service, never a user) asks of
//! a tenant. Each is one method on one path under `/service/tenants/{clientId}`; the tenant is
//! the path's, which is what IAM policies scope a backend's credentials to
//! (docs/server-api.md). Bodies of the requests shared with the socket (CREATE_CONVERSATION,
//! ADD_MEMBERS) go through that frame's own parser, so both doors refuse the same things.
//! Fuzzed as `fuzz/fuzz_targets/service_request.rs`.
//!
//! | method and path under `/service/tenants/{clientId}` | request |
//! |---|---|
//! | `POST /conversations` | [`ServiceRequest::CreateConversation`] |
//! | `POST /conversations/{conversationId}/members` | [`ServiceRequest::AddMembers`] |
//! | `DELETE /conversations/{conversationId}/members/{userId}` | [`ServiceRequest::RemoveMember`] |
//! | `POST /conversations/{conversationId}/messages` | [`ServiceRequest::PostSystemMessage`] |
//! | `PUT /users/{userId}` | [`ServiceRequest::UpsertUser`] |
//! | `POST /exports` | [`ServiceAction::StartExport`] |
//! | `POST /erasures` | [`ServiceAction::StartErasure`] |
//! | `GET /jobs/{jobId}` | [`ServiceAction::GetJob`] |
//! | `POST /offboarding` | [`ServiceAction::Offboard`] |
//! | `PUT /retention` | [`ServiceAction::SetRetention`] |

use serde::Deserialize;
use serde_json::{json, Value};

use super::{AddMembers, CreateConversation, MAX_CLIENT_MESSAGE_ID_CHARS};

use crate::error::{ErrorCode, ProtocolError};
use crate::lifecycle::{JobId, MAX_RETENTION_DAYS};
use crate::{ConversationId, Role, TenantId, UserId};

/// Largest request body the server API reads. Its largest request (97 members of a new
/// conversation, or a 4,000-character system message) is well under it.
pub const MAX_SERVICE_BODY_BYTES: usize = 64 * 1024;
/// Longest system message, in characters.
pub const MAX_SYSTEM_TEXT_CHARS: usize = 4_000;
/// Longest display name, in characters (as a token's `name` claim is cut).
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;
/// Longest `Idempotency-Key` (a system message's key is also its `clientMessageId`).
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = MAX_CLIENT_MESSAGE_ID_CHARS;
/// The header that makes a POST safe to send again.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// One server API request, for one tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRequest {
    pub tenant: TenantId,
    pub action: ServiceAction,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServiceAction {
    /// A conversation with its first members, created by the portal (no creator member).
    CreateConversation(CreateConversation),
    AddMembers(ConversationId, Vec<UserId>),
    RemoveMember(ConversationId, UserId),
    /// A `system` message ("Invoice #42 was paid"), posted as [`UserId::SYSTEM`].
    PostSystemMessage(ConversationId, SystemMessage),
    /// The portal's record of a user: display name and role.
    UpsertUser(UserId, UserProfile),
    /// An export of the tenant's data, or of one user's (`crate::lifecycle`).
    StartExport(Option<UserId>),
    /// The erasure of a user.
    StartErasure(UserId),
    /// Where a job is (and, for a finished export, a link to its file).
    GetJob(JobId),
    /// Every item and object of the tenant deleted (the body repeats the tenant's id).
    Offboard,
    /// How many days the tenant's messages, comments, notifications and files are kept
    /// (`None`: for ever).
    SetRetention(Option<u32>),
}

impl ServiceAction {
    /// The action's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ServiceAction::CreateConversation(_) => "create_conversation",
            ServiceAction::AddMembers(..) => "add_members",
            ServiceAction::RemoveMember(..) => "remove_member",
            ServiceAction::PostSystemMessage(..) => "post_system_message",
            ServiceAction::UpsertUser(..) => "upsert_user",
            ServiceAction::StartExport(_) => "start_export",
            ServiceAction::StartErasure(_) => "start_erasure",
            ServiceAction::GetJob(_) => "get_job",
            ServiceAction::Offboard => "offboard",
            ServiceAction::SetRetention(_) => "set_retention",
        }
    }

    /// Whether the request is a POST, which takes an `Idempotency-Key` (PUT and DELETE are
    /// idempotent by themselves).
    pub fn is_post(&self) -> bool {
        matches!(
            self,
            ServiceAction::CreateConversation(_)
                | ServiceAction::AddMembers(..)
                | ServiceAction::PostSystemMessage(..)
                | ServiceAction::StartExport(_)
                | ServiceAction::StartErasure(_)
                | ServiceAction::Offboard
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SystemMessage {
    /// 1 to [`MAX_SYSTEM_TEXT_CHARS`] characters, shown as written (clients render it as text).
    pub text: String,
}

/// `PUT /retention`: `days`, or `null` to keep everything.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionRequest {
    days: Option<u32>,
}

/// `POST /offboarding`: `confirm` repeats the tenant's id, so that no request meant for
/// another path (or tenant) deletes one by mistake.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct OffboardRequest {
    confirm: String,
}

/// `POST /exports` (`userId` optional) and `POST /erasures` (`userId` required).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct JobRequest {
    #[serde(default)]
    user_id: Option<UserId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserProfile {
    /// Shown for the user's messages and mentions; absent keeps the one the user has.
    #[serde(default)]
    pub name: Option<String>,
    /// The user's role from now on: applied to their live connections at once, and at every
    /// later connection whatever their token says (docs/server-api.md, "Roles").
    pub role: Role,
}

/// A `stackpro.` id where a user's belongs.
fn reserved_user(field: &str, user: &UserId) -> ProtocolError {
    invalid(format!(
        "{field}: \"{user}\" is one of the server's own names (ids starting \"stackpro.\"), not a user"
    ))
}

fn invalid(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidField, message)
}

/// At most `max` bytes of `text`, on a char boundary (error messages stay bounded).
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn not_found(method: &str, path: &str) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::NotFound,
        format!(
            "no server API resource at {} {}",
            cut(method, 16),
            cut(path, 200)
        ),
    )
}

/// The request `method` on `path` with `body` asks for. `NOT_FOUND` for any other method or
/// path, `INVALID_JSON` for a body that is not a JSON object, `INVALID_FIELD` naming the bad
/// field, `MESSAGE_TOO_LARGE` over [`MAX_SERVICE_BODY_BYTES`].
pub fn parse_service_request(
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<ServiceRequest, ProtocolError> {
    // A parser's message may quote the value it refused (serde: "unknown variant `…`"): cut,
    // so that no body makes a long answer.
    parse(method, path, body).map_err(|mut e| {
        if e.message.len() > MAX_ERROR_MESSAGE_BYTES {
            e.message = format!("{}…", cut(&e.message, MAX_ERROR_MESSAGE_BYTES));
        }
        e
    })
}

/// Longest refusal message of the server API, in bytes.
const MAX_ERROR_MESSAGE_BYTES: usize = 400;

fn parse(method: &str, path: &str, body: &[u8]) -> Result<ServiceRequest, ProtocolError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let ["service", "tenants", tenant, rest @ ..] = segments.as_slice() else {
        return Err(not_found(method, path));
    };
    let tenant = TenantId::parse(*tenant).map_err(|e| invalid(format!("clientId: {e}")))?;
    let conversation =
        |raw: &str| ConversationId::parse(raw).map_err(|e| invalid(format!("conversationId: {e}")));
    let user = |raw: &str| UserId::parse(raw).map_err(|e| invalid(format!("userId: {e}")));
    let action = match (method, rest) {
        ("POST", ["conversations"]) => {
            let create = CreateConversation::from_value(&object(body)?)?;
            if let Some(reserved) = create.members.iter().find(|m| m.is_reserved()) {
                return Err(reserved_user("members", reserved));
            }
            ServiceAction::CreateConversation(create)
        }
        ("POST", ["conversations", id, "members"]) => {
            let conversation = conversation(id)?;
            let mut fields = object(body)?;
            if let Value::Object(map) = &mut fields {
                map.insert("conversationId".into(), json!(conversation));
            }
            let add = AddMembers::from_value(&fields)?;
            if let Some(reserved) = add.members.iter().find(|m| m.is_reserved()) {
                return Err(reserved_user("members", reserved));
            }
            ServiceAction::AddMembers(conversation, add.members)
        }
        ("DELETE", ["conversations", id, "members", member]) => {
            no_body(body)?;
            ServiceAction::RemoveMember(conversation(id)?, user(member)?)
        }
        ("POST", ["conversations", id, "messages"]) => {
            let conversation = conversation(id)?;
            let message: SystemMessage = typed(body)?;
            let chars = message.text.chars().count();
            if message.text.trim().is_empty() || chars > MAX_SYSTEM_TEXT_CHARS {
                return Err(invalid(format!(
                    "text must be 1 to {MAX_SYSTEM_TEXT_CHARS} characters (not only spaces); it has {chars}"
                )));
            }
            ServiceAction::PostSystemMessage(conversation, message)
        }
        ("PUT", ["users", id]) => {
            let user = user(id)?;
            if user.is_reserved() {
                return Err(reserved_user("userId", &user));
            }
            let mut profile: UserProfile = typed(body)?;
            if let Some(name) = &profile.name {
                let trimmed = name.trim();
                if trimmed.is_empty()
                    || trimmed.chars().count() > MAX_DISPLAY_NAME_CHARS
                    || trimmed.chars().any(char::is_control)
                {
                    return Err(invalid(format!(
                        "name must be 1 to {MAX_DISPLAY_NAME_CHARS} characters without control characters"
                    )));
                }
                profile.name = Some(trimmed.to_owned());
            }
            ServiceAction::UpsertUser(user, profile)
        }
        ("POST", ["exports"]) => {
            let request: JobRequest = typed(body)?;
            if let Some(user) = request.user_id.as_ref().filter(|u| u.is_reserved()) {
                return Err(reserved_user("userId", user));
            }
            ServiceAction::StartExport(request.user_id)
        }
        ("POST", ["erasures"]) => {
            let request: JobRequest = typed(body)?;
            let user = request
                .user_id
                .ok_or_else(|| invalid("userId: name the user to erase"))?;
            if user.is_reserved() {
                return Err(reserved_user("userId", &user));
            }
            ServiceAction::StartErasure(user)
        }
        ("PUT", ["retention"]) => {
            let value = object(body)?;
            if value.get("days").is_none() {
                return Err(invalid(
                    "days: the days the tenant's messages are kept (1 to 3650), or null to keep them for ever",
                ));
            }
            let request: RetentionRequest =
                serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
            if let Some(days) = request
                .days
                .filter(|d| !(1..=MAX_RETENTION_DAYS).contains(d))
            {
                return Err(invalid(format!(
                    "days must be 1 to {MAX_RETENTION_DAYS} (or null: kept for ever); it is {days}"
                )));
            }
            ServiceAction::SetRetention(request.days)
        }
        ("POST", ["offboarding"]) => {
            let request: OffboardRequest = typed(body)?;
            if request.confirm != tenant.as_str() {
                return Err(invalid(format!(
                    "confirm must repeat this tenant's id (\"{tenant}\") to offboard it: every item and file of the tenant is deleted"
                )));
            }
            ServiceAction::Offboard
        }
        ("GET", ["jobs", id]) => {
            no_body(body)?;
            ServiceAction::GetJob(JobId::parse(id)?)
        }
        _ => return Err(not_found(method, path)),
    };
    Ok(ServiceRequest { tenant, action })
}

/// A checked `Idempotency-Key` (never contains `#`, so it is safe in a table key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key, or INVALID_FIELD saying what a key may be.
    pub fn parse(key: &str) -> Result<Self, ProtocolError> {
        idempotency_key_ok(key)?;
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An `Idempotency-Key`: 1 to [`MAX_IDEMPOTENCY_KEY_CHARS`] of `A-Z a-z 0-9 - _ . :` (a UUID,
/// or the portal's own event id).
pub fn idempotency_key_ok(key: &str) -> Result<(), ProtocolError> {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY_CHARS
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        return Err(invalid(format!(
            "the Idempotency-Key header must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters of A-Z, a-z, 0-9, '-', '_', '.' and ':' (a UUID is a good key)"
        )));
    }
    Ok(())
}

/// What an `Idempotency-Key` is bound to: the SHA-256 of the method, the path and the body.
/// A repeat with the same key and another hash is a different request.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    // The path's length first: no method, path and body run into another's.
    let length = format!("{}\n", path.len());
    for part in [
        method.as_bytes(),
        b"\n",
        length.as_bytes(),
        path.as_bytes(),
        body,
    ] {
        context.update(part);
    }
    context
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn size_ok(body: &[u8]) -> Result<(), ProtocolError> {
    if body.len() > MAX_SERVICE_BODY_BYTES {
        return Err(ProtocolError::new(
            ErrorCode::MessageTooLarge,
            format!(
                "the body is {} bytes; the server API reads at most {MAX_SERVICE_BODY_BYTES}",
                body.len()
            ),
        ));
    }
    Ok(())
}

fn no_body(body: &[u8]) -> Result<(), ProtocolError> {
    if !body.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid("this request takes no body"));
    }
    Ok(())
}

fn object(body: &[u8]) -> Result<Value, ProtocolError> {
    size_ok(body)?;
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => {
            let fields = value.as_object().map(|o| o.keys()).into_iter().flatten();
            for field in fields {
                if field == "type" || field == "requestId" {
                    return Err(invalid(format!(
                        "\"{field}\" is a WebSocket frame field; the server API's path names the action"
                    )));
                }
                // The tenant is the path's; who acts is the signed caller. (A user's `role` is
                // a field of PUT /users/{userId}, read by its own type.)
                if field != "role" && super::IDENTITY_FIELDS.contains(&field.as_str()) {
                    return Err(invalid(format!(
                        "\"{field}\" cannot be set: the tenant is the path's and the caller is the signed service"
                    )));
                }
            }
            Ok(value)
        }
        Ok(_) | Err(_) => Err(ProtocolError::new(
            ErrorCode::InvalidJson,
            "the body must be a JSON object (Content-Type: application/json)",
        )),
    }
}

fn typed<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ProtocolError> {
    let value = object(body)?;
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: &str, path: &str, body: &str) -> Result<ServiceAction, ErrorCode> {
        parse_service_request(method, path, body.as_bytes())
            .map(|r| {
                assert_eq!(r.tenant.as_str(), "acme");
                r.action
            })
            .map_err(|e| e.code)
    }

    #[test]
    fn each_path_is_its_action_under_the_paths_tenant() {
        assert!(matches!(
            parse(
                "POST",
                "/service/tenants/acme/conversations",
                r#"{"conversationId":"project-7","kind":"project","title":"Project 7","members":["bob","carol"]}"#
            ),
            Ok(ServiceAction::CreateConversation(c)) if c.members.len() == 2
        ));
        assert!(matches!(
            parse("POST", "/service/tenants/acme/conversations/project-7/members", r#"{"members":["dan"]}"#),
            Ok(ServiceAction::AddMembers(c, m)) if c.as_str() == "project-7" && m.len() == 1
        ));
        assert!(matches!(
            parse("DELETE", "/service/tenants/acme/conversations/project-7/members/dan", ""),
            Ok(ServiceAction::RemoveMember(_, u)) if u.as_str() == "dan"
        ));
        assert!(matches!(
            parse("POST", "/service/tenants/acme/conversations/project-7/messages", r#"{"text":"Invoice #42 was paid"}"#),
            Ok(ServiceAction::PostSystemMessage(_, m)) if m.text == "Invoice #42 was paid"
        ));
        assert!(matches!(
            parse("PUT", "/service/tenants/acme/users/bob", r#"{"name":"  Bob B. ","role":"ADMIN"}"#),
            Ok(ServiceAction::UpsertUser(u, p)) if u.as_str() == "bob" && p.name.as_deref() == Some("Bob B.") && p.role == Role::Admin
        ));
        assert_eq!(
            parse("POST", "/service/tenants/acme/exports", "{}"),
            Ok(ServiceAction::StartExport(None))
        );
        assert!(matches!(
            parse("POST", "/service/tenants/acme/exports", r#"{"userId":"bob"}"#),
            Ok(ServiceAction::StartExport(Some(u))) if u.as_str() == "bob"
        ));
        assert!(matches!(
            parse("POST", "/service/tenants/acme/erasures", r#"{"userId":"bob"}"#),
            Ok(ServiceAction::StartErasure(u)) if u.as_str() == "bob"
        ));
        assert!(matches!(
            parse("GET", "/service/tenants/acme/jobs/0193a1b2c3d4e5f60718293a4b5c6d7e", ""),
            Ok(ServiceAction::GetJob(j)) if j.as_str() == "0193a1b2c3d4e5f60718293a4b5c6d7e"
        ));
    }

    #[test]
    fn a_job_names_a_real_user_and_a_real_job() {
        use ErrorCode::*;
        for (method, path, body) in [
            ("POST", "/service/tenants/acme/erasures", "{}"),
            (
                "POST",
                "/service/tenants/acme/erasures",
                r#"{"userId":"stackpro.system"}"#,
            ),
            (
                "POST",
                "/service/tenants/acme/erasures",
                r#"{"userId":"stackpro.erased"}"#,
            ),
            (
                "POST",
                "/service/tenants/acme/erasures",
                r#"{"userId":"a#b"}"#,
            ),
            (
                "POST",
                "/service/tenants/acme/exports",
                r#"{"userId":"bob","all":true}"#,
            ),
            (
                "POST",
                "/service/tenants/acme/exports",
                r#"{"clientId":"globex"}"#,
            ),
            ("GET", "/service/tenants/acme/jobs/not-a-job", ""),
            (
                "GET",
                "/service/tenants/acme/jobs/0193A1B2C3D4E5F60718293A4B5C6D7E",
                "",
            ),
            (
                "GET",
                "/service/tenants/acme/jobs/0193a1b2c3d4e5f60718293a4b5c6d7e",
                "{}",
            ),
        ] {
            assert_eq!(
                parse(method, path, body),
                Err(InvalidField),
                "{method} {path} {body}"
            );
        }
        assert_eq!(
            parse("DELETE", "/service/tenants/acme/exports", ""),
            Err(NotFound)
        );
        assert_eq!(
            parse(
                "POST",
                "/service/tenants/acme/offboarding",
                r#"{"confirm":"acme"}"#
            ),
            Ok(ServiceAction::Offboard)
        );
        assert_eq!(
            parse("PUT", "/service/tenants/acme/retention", r#"{"days":30}"#),
            Ok(ServiceAction::SetRetention(Some(30)))
        );
        assert_eq!(
            parse("PUT", "/service/tenants/acme/retention", r#"{"days":null}"#),
            Ok(ServiceAction::SetRetention(None))
        );
        for body in [
            r#"{"days":0}"#,
            r#"{"days":3651}"#,
            r#"{"days":-1}"#,
            r#"{"days":"30"}"#,
            "{}",
        ] {
            assert_eq!(
                parse("PUT", "/service/tenants/acme/retention", body),
                Err(InvalidField),
                "{body}"
            );
        }
        for body in [
            r#"{"confirm":"globex"}"#,
            r#"{"confirm":"ACME"}"#,
            "{}",
            r#"{"confirm":"acme","x":1}"#,
        ] {
            assert_eq!(
                parse("POST", "/service/tenants/acme/offboarding", body),
                Err(InvalidField),
                "{body}"
            );
        }
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        use ErrorCode::*;
        for (method, path, body, code) in [
            ("GET", "/service/tenants/acme/conversations", "", NotFound),
            ("POST", "/service/tenants/acme/nothing", "{}", NotFound),
            ("POST", "/conversations", "{}", NotFound),
            ("PUT", "/service/tenants/acme/users", "{}", NotFound),
            (
                "POST",
                "/service/tenants/a%23b/conversations",
                "{}",
                InvalidField,
            ),
            (
                "POST",
                "/service/tenants/acme/conversations",
                "[1]",
                InvalidJson,
            ),
            (
                "POST",
                "/service/tenants/acme/conversations",
                "not json",
                InvalidJson,
            ),
            // A frame's envelope in a body: the path names the action.
            (
                "POST",
                "/service/tenants/acme/conversations",
                r#"{"type":"CREATE_CONVERSATION","conversationId":"x","kind":"project"}"#,
                InvalidField,
            ),
            // Another tenant named in the body, as the socket refuses it.
            (
                "POST",
                "/service/tenants/acme/conversations",
                r#"{"conversationId":"x","kind":"project","clientId":"globex"}"#,
                InvalidField,
            ),
            (
                "POST",
                "/service/tenants/acme/conversations",
                r#"{"conversationId":"x","kind":"project","members":["stackpro.system"]}"#,
                InvalidField,
            ),
            (
                "POST",
                "/service/tenants/acme/conversations/x/members",
                r#"{"members":[]}"#,
                InvalidField,
            ),
            (
                "POST",
                "/service/tenants/acme/conversations/x/members",
                r#"{"members":["stackpro.system"]}"#,
                InvalidField,
            ),
            (
                "DELETE",
                "/service/tenants/acme/conversations/x/members/bob",
                "{}",
                InvalidField,
            ),
            (
                "POST",
                "/service/tenants/acme/conversations/x/messages",
                r#"{"text":"  "}"#,
                InvalidField,
            ),
            (
                "POST",
                "/service/tenants/acme/conversations/x/messages",
                r#"{"text":"hi","attachments":[]}"#,
                InvalidField,
            ),
            (
                "PUT",
                "/service/tenants/acme/users/bob",
                r#"{"role":"GOD"}"#,
                InvalidField,
            ),
            (
                "PUT",
                "/service/tenants/acme/users/bob",
                r#"{"name":"a\u0007b","role":"USER"}"#,
                InvalidField,
            ),
            (
                "PUT",
                "/service/tenants/acme/users/stackpro.system",
                r#"{"role":"OWNER"}"#,
                InvalidField,
            ),
        ] {
            assert_eq!(
                parse(method, path, body).map(|_| ()),
                Err(code),
                "{method} {path} {body}"
            );
        }
        let long = format!(r#"{{"text":"{}"}}"#, "x".repeat(MAX_SYSTEM_TEXT_CHARS + 1));
        assert_eq!(
            parse(
                "POST",
                "/service/tenants/acme/conversations/x/messages",
                &long
            )
            .map(|_| ()),
            Err(InvalidField)
        );
        let huge = format!(r#"{{"text":"{}"}}"#, "x".repeat(MAX_SERVICE_BODY_BYTES));
        assert_eq!(
            parse(
                "POST",
                "/service/tenants/acme/conversations/x/messages",
                &huge
            )
            .map(|_| ()),
            Err(MessageTooLarge)
        );
        let e = parse_service_request("POST", &format!("/{}", "é".repeat(500)), b"").unwrap_err();
        assert!(e.message.len() < 260, "{}", e.message);
        // Found by the service_request fuzz target: the method was not cut, and serde quotes
        // the value it refuses.
        let e = parse_service_request(&"POST".repeat(300), "/x", b"").unwrap_err();
        assert!(e.message.len() < 260, "{}", e.message);
        let role = format!(r#"{{"role":"{}"}}"#, "ADM1".repeat(500));
        let e = parse_service_request("PUT", "/service/tenants/acme/users/bob", role.as_bytes())
            .unwrap_err();
        assert!(e.message.len() <= 404, "{}", e.message.len());
    }

    #[test]
    fn idempotency_keys_are_short_and_plain() {
        assert!(idempotency_key_ok("4f1c2a9e-8d7b-4c1a-9e2f-0a1b2c3d4e5f").is_ok());
        assert!(idempotency_key_ok("invoice.42:paid").is_ok());
        assert_ne!(
            request_hash("POST", "/a", b"{}"),
            request_hash("POST", "/a", b"{ }")
        );
        assert_ne!(
            request_hash("POST", "/a\n", b""),
            request_hash("POST", "/a", b"\n")
        );
        assert_eq!(request_hash("PUT", "/u", b"x").len(), 64);
        for bad in [
            "",
            "a b",
            "é",
            "a#b",
            &"k".repeat(MAX_IDEMPOTENCY_KEY_CHARS + 1),
        ] {
            assert!(idempotency_key_ok(bad).is_err(), "{bad}");
        }
    }
}
