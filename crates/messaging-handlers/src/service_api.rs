//! The server API (lambda_http, behind API Gateway HTTP API routes with `AWS_IAM`
//! authorization): what the portal's own backend asks of a tenant, as a service and never as
//! a user. API Gateway checks the SigV4 signature and the caller's IAM policy before this
//! function runs (the local gateway does the same, `messaging_gateway::sigv4`); the function
//! refuses any request that did not come through that check, so a route deployed without it
//! serves nothing. docs/server-api.md has the choice, the routes and curl examples.
//!
//! | method and path under `/service/tenants/{clientId}` | does | answers |
//! |---|---|---|
//! | `POST /conversations` | creates a conversation with its members (the portal is not one) | 201 `{conversation}` |
//! | `POST /conversations/{id}/members` | adds members (their live sockets subscribed; MEMBER_JOINED) | 200 `{conversationId, added, alreadyMembers}` |
//! | `DELETE /conversations/{id}/members/{userId}` | removes a member (MEMBER_REMOVED, to them too) | 200 `{conversationId, userId, removed}` |
//! | `POST /conversations/{id}/messages` | posts a `system` message, delivered live like any | 201 `{message}` |
//! | `PUT /users/{userId}` | the user's display name and role, from now on | 200 `{userId, role, name, connectionsUpdated}` |
//! | `POST /exports` | starts an export of the tenant's data (`{}`) or of one user's (`{userId}`) | 202 `{job}` |
//! | `POST /erasures` | starts the erasure of a user (`{userId}`) | 202 `{job}` |
//! | `GET /jobs/{jobId}` | where an export or erasure is; a finished export's download link | 200 `{job, download?}` |
//! | `PUT /retention` | how long the tenant keeps messages, comments, notifications and files (`{days}`, or `null`) | 200 `{retentionDays}` |
//! | `POST /offboarding` | starts deleting every item and object of the tenant (`{confirm: clientId}`) | 202 `{job}` |
//!
//! Every POST takes an `Idempotency-Key`: the first request with a key is carried out and its
//! answer kept for 24 hours; the same request again gets that answer (`Idempotent-Replayed:
//! true`), another request with the key IDEMPOTENCY_KEY_REUSED, and a repeat while the first
//! is still running IDEMPOTENCY_KEY_IN_USE. A failure worth retrying (UNAVAILABLE) gives the
//! key back, so the retry runs.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Value};
use tracing::{info, warn};

use messaging_aws::{
    AwsError, BroadcastQueue, Claim, FileStorage, JoinOutcome, MessagingTable, NewConversation,
    NewMessage, Sent, WorkQueue,
};
use messaging_core::audit::{AuditAction, AuditEntry};
use messaging_core::protocol::{
    parse_service_request, request_hash, ContentKind, IdempotencyKey, MessageContent, ServerFrame,
    ServiceAction, ServiceRequest, IDEMPOTENCY_KEY_HEADER,
};
use messaging_core::time::{now_millis, rfc3339_millis};
use messaging_core::{ConversationId, ErrorCode, ProtocolError, TenantId, UserId};

use crate::audit;
use crate::config::{self, ConfigError};
use crate::lifecycle_requests::{self, Doors, Requester};
use crate::outbox;
use crate::websocket::existing_conversation;

pub struct ServiceApiService {
    pub table: MessagingTable,
    pub queue: BroadcastQueue,
    /// Where exports and erasures start (`crate::lifecycle`).
    pub jobs: WorkQueue,
    /// Signs a finished export's download link.
    pub storage: FileStorage,
}

impl ServiceApiService {
    /// As the Lambda builds it: `TABLE_NAME`, `BROADCAST_QUEUE_URL`, `LIFECYCLE_QUEUE_URL`,
    /// `FILES_BUCKET`.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            table: config::table(sdk)?,
            queue: config::broadcast_queue(sdk)?,
            jobs: config::lifecycle_queue(sdk)?,
            storage: FileStorage::new(sdk, config::required("FILES_BUCKET")?),
        })
    }
}

/// An answer: its status and JSON body.
type Answer = (StatusCode, Value);

/// Handles one request; never fails (errors are JSON ERROR bodies with their status).
pub async fn handle(service: &ServiceApiService, request: Request) -> Response<Body> {
    let (status, body, replayed) = match answer(service, &request).await {
        Ok(Outcome::Done((status, body))) => (status, body.to_string(), false),
        Ok(Outcome::Replayed(status, body)) => (status, body, true),
        Err(e) => {
            info!(code = %e.code, path = request.uri().path(), "server API request refused");
            (status_of(&e), ServerFrame::error(None, &e).to_json(), false)
        }
    };
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn status_of(e: &ProtocolError) -> StatusCode {
    StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

enum Outcome {
    Done(Answer),
    /// A POST's kept answer, sent again for a repeat of its `Idempotency-Key`.
    Replayed(StatusCode, String),
}

/// The IAM principal API Gateway verified (`requestContext.authorizer.iam.userArn`), or
/// UNAUTHORIZED: the request did not come through an `AWS_IAM` route.
fn signed_caller(request: &Request) -> Result<String, ProtocolError> {
    let arn = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .authorizer
            .as_ref()
            .and_then(|a| a.iam.as_ref())
            .and_then(|iam| iam.user_arn.clone()),
        _ => None,
    };
    arn.filter(|arn| !arn.is_empty()).ok_or_else(|| {
        ProtocolError::new(
            ErrorCode::Unauthorized,
            "the server API answers requests signed with AWS Signature Version 4 by an IAM principal allowed execute-api:Invoke on the route; a user's token is not accepted",
        )
    })
}

pub(crate) fn body_bytes(request: &Request) -> &[u8] {
    match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    }
}

async fn answer(service: &ServiceApiService, request: &Request) -> Result<Outcome, ProtocolError> {
    let caller = signed_caller(request)?;
    let (method, path, body) = (
        request.method().as_str(),
        request.uri().path(),
        body_bytes(request),
    );
    let parsed = parse_service_request(method, path, body)?;
    let action = parsed.action.name();
    info!(caller = %caller, tenant = %parsed.tenant, action, "server API request");
    if !parsed.action.is_post() {
        return carry_out(service, &caller, &parsed, None)
            .await
            .map(Outcome::Done);
    }
    let key = request
        .headers()
        .get(IDEMPOTENCY_KEY_HEADER)
        .ok_or_else(|| {
            ProtocolError::new(
                ErrorCode::InvalidField,
                "every POST of the server API takes an Idempotency-Key header (a UUID per request; send the same one when you retry)",
            )
        })?
        .to_str()
        .map_err(|_| ProtocolError::new(ErrorCode::InvalidField, "the Idempotency-Key header is not text"))
        .and_then(IdempotencyKey::parse)?;
    let hash = request_hash(method, path, body);
    let table = &service.table;
    match table
        .claim_idempotency_key(&parsed.tenant, &key, &hash, now_millis())
        .await?
    {
        Claim::Claimed => {}
        Claim::Answered { status, body } => {
            info!(key = %key, "repeat of an answered request");
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            return Ok(Outcome::Replayed(status, body));
        }
        Claim::InProgress => {
            return Err(ProtocolError {
                code: ErrorCode::IdempotencyKeyInUse,
                message: format!("a request with Idempotency-Key \"{key}\" is still being carried out; send it again shortly for its answer"),
                retry_after_ms: Some(1_000),
            })
        }
        Claim::OtherRequest => {
            return Err(ProtocolError::new(
                ErrorCode::IdempotencyKeyReused,
                format!("Idempotency-Key \"{key}\" was used for a different request (method, path or body); use a new key for a new request"),
            ))
        }
    }
    let result = carry_out(service, &caller, &parsed, Some(&key)).await;
    let kept = match &result {
        Ok((status, body)) => Some((*status, body.to_string())),
        // A refusal is the request's answer; a failure worth retrying is not.
        Err(e) if !e.code.is_retryable() => {
            Some((status_of(e), ServerFrame::error(None, e).to_json()))
        }
        Err(_) => None,
    };
    let stored = match kept {
        Some((status, body)) => {
            table
                .complete_idempotency_key(
                    &parsed.tenant,
                    &key,
                    &hash,
                    status.as_u16(),
                    &body,
                    now_millis(),
                )
                .await
        }
        None => {
            table
                .release_idempotency_key(&parsed.tenant, &key, &hash)
                .await
        }
    };
    if let Err(e) = stored {
        // The request was carried out; a repeat within a minute is told to wait, after that
        // it runs again (creating conversations and adding members is idempotent by itself,
        // and a system message's key is its clientMessageId, so it is not stored twice).
        warn!(error = %e, key = %key, "the idempotency record was not updated");
    }
    result.map(Outcome::Done)
}

async fn carry_out(
    service: &ServiceApiService,
    caller: &str,
    request: &ServiceRequest,
    key: Option<&IdempotencyKey>,
) -> Result<Answer, ProtocolError> {
    let tenant = &request.tenant;
    let audit = |action, complete: &dyn Fn(AuditEntry) -> AuditEntry| {
        let entry = complete(AuditEntry::by_service(
            caller,
            action,
            rfc3339_millis(now_millis()),
        ));
        audit::record(&service.table, tenant, entry)
    };
    match &request.action {
        ServiceAction::CreateConversation(create) => {
            let new = NewConversation {
                tenant: tenant.clone(),
                conversation: create.conversation_id.clone(),
                kind: create.kind,
                title: create.title.clone(),
                created_by: UserId::system(),
                members: create.members.clone(),
                now: now_millis(),
            };
            let view = match service.table.create_conversation(&new).await {
                Ok(view) => view,
                Err(AwsError::ConditionFailed(_)) => {
                    return Err(ProtocolError::new(
                        ErrorCode::ConversationExists,
                        format!("conversation \"{}\" already exists", new.conversation),
                    ))
                }
                Err(e) => return Err(e.into()),
            };
            let frame = ServerFrame::ConversationCreated {
                conversation: view.clone(),
            };
            announce(service, tenant, &view.conversation_id, &frame).await;
            info!(conversation = %view.conversation_id, members = create.members.len(), "conversation created by the portal");
            let members = create.members.len();
            audit(AuditAction::ConversationCreated, &|e| {
                e.conversation(&view.conversation_id)
                    .detail(&format!("created with {members} members"))
            })
            .await;
            Ok((StatusCode::CREATED, json!({ "conversation": view })))
        }
        ServiceAction::AddMembers(conversation, members) => {
            existing_conversation(&service.table, tenant, conversation).await?;
            let (mut added, mut already) = (Vec::new(), Vec::new());
            for user in members {
                let outcome = service
                    .table
                    .add_member(tenant, conversation, user, &UserId::system(), now_millis())
                    .await?;
                if let JoinOutcome::Joined { .. } = outcome {
                    let frame = ServerFrame::MemberJoined {
                        conversation_id: conversation.clone(),
                        user_id: user.clone(),
                    };
                    announce(service, tenant, conversation, &frame).await;
                    audit(AuditAction::MemberAdded, &|e| {
                        e.conversation(conversation).user(user)
                    })
                    .await;
                    added.push(user.clone());
                } else {
                    already.push(user.clone());
                }
            }
            info!(conversation = %conversation, added = added.len(), "members added by the portal");
            Ok((
                StatusCode::OK,
                json!({ "conversationId": conversation, "added": added, "alreadyMembers": already }),
            ))
        }
        ServiceAction::RemoveMember(conversation, user) => {
            existing_conversation(&service.table, tenant, conversation).await?;
            let removed = service
                .table
                .remove_member(tenant, conversation, user)
                .await?;
            if removed {
                let frame = ServerFrame::MemberRemoved {
                    conversation_id: conversation.clone(),
                    user_id: user.clone(),
                    removed_by: UserId::system(),
                };
                announce(service, tenant, conversation, &frame).await;
                // No longer subscribed: told directly.
                let job = outbox::to_users(
                    tenant,
                    messaging_aws::MessageGroup::Conversation(conversation.clone()),
                    vec![user.clone()],
                    &frame,
                );
                outbox::best_effort(&service.queue, &job, "removal to the removed").await;
                info!(conversation = %conversation, member = %user, "member removed by the portal");
                audit(AuditAction::MemberRemoved, &|e| {
                    e.conversation(conversation).user(user)
                })
                .await;
            }
            // Removing a non-member again changes nothing: the same answer, `removed: false`.
            Ok((
                StatusCode::OK,
                json!({ "conversationId": conversation, "userId": user, "removed": removed }),
            ))
        }
        ServiceAction::PostSystemMessage(conversation, message) => {
            post_system_message(service, tenant, conversation, &message.text, key).await
        }
        ServiceAction::StartExport(_)
        | ServiceAction::StartErasure(_)
        | ServiceAction::GetJob(_)
        | ServiceAction::SetRetention(_)
        | ServiceAction::Offboard => {
            let doors = Doors {
                table: &service.table,
                jobs: &service.jobs,
                storage: &service.storage,
            };
            lifecycle_requests::carry_out(
                doors,
                Requester::Service { caller },
                tenant,
                &request.action,
            )
            .await
            .unwrap_or_else(|| {
                Err(ProtocolError::new(
                    ErrorCode::Internal,
                    "not a lifecycle request",
                ))
            })
        }
        ServiceAction::UpsertUser(user, profile) => {
            let connections = service
                .table
                .set_portal_user(tenant, user, profile.role, profile.name.as_deref())
                .await?;
            info!(user = %user, role = %profile.role, connections = connections.len(), "user set by the portal");
            let detail = match &profile.name {
                Some(_) => format!("role {}, display name set", profile.role),
                None => format!("role {}", profile.role),
            };
            audit(AuditAction::UserUpdated, &|e| e.user(user).detail(&detail)).await;
            Ok((
                StatusCode::OK,
                json!({
                    "userId": user,
                    "role": profile.role,
                    "name": profile.name,
                    "connectionsUpdated": connections.len(),
                }),
            ))
        }
    }
}

/// Stores a `system` message as [`UserId::SYSTEM`] and queues it to the conversation's
/// subscribers (NEW_MESSAGE, ordered with the conversation's other events). The request's
/// `Idempotency-Key` is the message's `clientMessageId`: a retry after a lost answer stores
/// nothing twice and queues the first again (SQS drops it if it was queued).
async fn post_system_message(
    service: &ServiceApiService,
    tenant: &TenantId,
    conversation: &ConversationId,
    text: &str,
    key: Option<&IdempotencyKey>,
) -> Result<Answer, ProtocolError> {
    existing_conversation(&service.table, tenant, conversation).await?;
    let new = NewMessage {
        tenant: tenant.clone(),
        conversation: conversation.clone(),
        sender: UserId::system(),
        sender_name: None,
        content: MessageContent {
            text: text.to_owned(),
            kind: ContentKind::System,
            attachments: Vec::new(),
        },
        client_message_id: key.map(|k| k.as_str().to_owned()),
        parent_seq: None,
        now: now_millis(),
    };
    let message = match service.table.send_message(&new).await? {
        Sent::Stored { message, .. } | Sent::Duplicate(message) => message,
        Sent::ParentNotFound => {
            return Err(ProtocolError::new(
                ErrorCode::Internal,
                "a system message has no parent",
            ))
        }
    };
    let frame = ServerFrame::NewMessage {
        data: message.clone(),
    };
    let job = outbox::message(tenant, &message, &frame, new.now);
    if let Err(e) = service.queue.send(&job).await {
        warn!(error = %e, seq = message.seq, "system message stored but not queued");
        return Err(ProtocolError::new(
            ErrorCode::Unavailable,
            format!(
                "message stored as seq {} but not delivered live; send the same request again (same Idempotency-Key): it will not be stored twice",
                message.seq
            ),
        ));
    }
    info!(conversation = %conversation, seq = message.seq, "system message posted");
    Ok((StatusCode::CREATED, json!({ "message": message })))
}

/// Tells the conversation's subscribers. Best effort: the change is stored and seen on the
/// next read, as on the socket.
async fn announce(
    service: &ServiceApiService,
    tenant: &TenantId,
    conversation: &ConversationId,
    frame: &ServerFrame,
) {
    let job = outbox::to_conversation(tenant, conversation, frame);
    outbox::best_effort(&service.queue, &job, "announcement").await;
}
