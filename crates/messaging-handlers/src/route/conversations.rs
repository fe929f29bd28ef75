//! CREATE_CONVERSATION, JOIN_CONVERSATION, ADD_MEMBERS and REMOVE_MEMBER, under the role rules
//! of `messaging_core::access`.

use messaging_aws::{AwsError, JoinOutcome, MessageGroup, NewConversation};
use messaging_core::audit::AuditAction;
use messaging_core::protocol::{
    AddMembers, CreateConversation, Handle, JoinConversation, RemoveMember, Reply, ServerFrame,
};
use messaging_core::time::now_millis;
use messaging_core::{ErrorCode, ProtocolError};
use tracing::info;

use super::RouteService;
use crate::websocket::{refused, Call};

impl Handle<CreateConversation> for Call<'_, RouteService> {
    async fn handle(&self, create: CreateConversation) -> Reply {
        let p = self.principal();
        refused(p.may_create_conversation(), "create conversations")?;
        if create.members.iter().any(|m| m != &p.user) {
            refused(p.may_add_members(), "add members")?;
        }
        let new = NewConversation {
            tenant: p.tenant.clone(),
            conversation: create.conversation_id.clone(),
            kind: create.kind,
            title: create.title,
            created_by: p.user.clone(),
            members: create.members,
            now: now_millis(),
        };
        let view = match self.service.table.create_conversation(&new).await {
            Ok(view) => view,
            Err(AwsError::ConditionFailed(_)) => {
                return Err(ProtocolError::new(
                    ErrorCode::ConversationExists,
                    format!(
                        "conversation \"{}\" already exists; choose another id or join it",
                        new.conversation
                    ),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        info!(conversation = %view.conversation_id, kind = %view.kind, "conversation created");
        let members = new.members.len();
        self.audit(AuditAction::ConversationCreated, |e| {
            e.conversation(&view.conversation_id)
                .detail(&format!("created with {members} other members"))
        })
        .await;
        let frame = ServerFrame::ConversationCreated {
            conversation: view.clone(),
        };
        self.announce(&view.conversation_id, &frame).await;
        Ok(Some(self.ack().conversation(view.conversation_id).into()))
    }
}

impl Handle<JoinConversation> for Call<'_, RouteService> {
    async fn handle(&self, join: JoinConversation) -> Reply {
        let p = self.principal();
        let table = &self.service.table;
        let conversation = join.target.resolve(&p.tenant)?;
        let view = self.existing_conversation(&conversation).await?;
        if !table.is_member(&p.tenant, &conversation, &p.user).await? {
            refused(
                p.may_join(view.kind),
                &format!("join {} conversation \"{conversation}\"", view.kind),
            )?;
        }
        let outcome = table
            .add_member(&p.tenant, &conversation, &p.user, &p.user, now_millis())
            .await?;
        if let JoinOutcome::Joined {
            subscribed_connections,
        } = outcome
        {
            info!(conversation = %conversation, subscribed_connections, "joined");
            self.audit(AuditAction::MemberAdded, |e| {
                e.conversation(&conversation).user(&p.user)
            })
            .await;
            let frame = ServerFrame::MemberJoined {
                conversation_id: conversation.clone(),
                user_id: p.user.clone(),
            };
            self.announce(&conversation, &frame).await;
        }
        Ok(Some(self.ack().conversation(conversation).into()))
    }
}

/// OWNER/ADMIN add users (whether or not they are members themselves). Each new member's live
/// sockets are subscribed at once; members hear MEMBER_JOINED.
impl Handle<AddMembers> for Call<'_, RouteService> {
    async fn handle(&self, add: AddMembers) -> Reply {
        let p = self.principal();
        let conversation = add.target.resolve(&p.tenant)?;
        refused(p.may_add_members(), "add members")?;
        self.existing_conversation(&conversation).await?;
        for user in &add.members {
            let outcome = self
                .service
                .table
                .add_member(&p.tenant, &conversation, user, &p.user, now_millis())
                .await?;
            if let JoinOutcome::Joined { .. } = outcome {
                let frame = ServerFrame::MemberJoined {
                    conversation_id: conversation.clone(),
                    user_id: user.clone(),
                };
                self.announce(&conversation, &frame).await;
                self.audit(AuditAction::MemberAdded, |e| {
                    e.conversation(&conversation).user(user)
                })
                .await;
            }
        }
        info!(conversation = %conversation, added = add.members.len(), "members added");
        Ok(Some(self.ack().conversation(conversation).into()))
    }
}

/// OWNER/ADMIN remove anyone; anyone may remove themself. The removed user's sockets stop
/// receiving the conversation at once and get MEMBER_REMOVED themselves.
impl Handle<RemoveMember> for Call<'_, RouteService> {
    async fn handle(&self, remove: RemoveMember) -> Reply {
        let p = self.principal();
        let conversation = remove.target.resolve(&p.tenant)?;
        let leaving = remove.user_id == p.user;
        if leaving {
            self.require_member(&conversation).await?;
        } else {
            refused(p.may_remove_member(&remove.user_id), "remove other members")?;
            self.existing_conversation(&conversation).await?;
        }
        let removed = self
            .service
            .table
            .remove_member(&p.tenant, &conversation, &remove.user_id)
            .await?;
        if !removed {
            return Err(ProtocolError::new(
                ErrorCode::NotAMember,
                format!(
                    "\"{}\" is not a member of conversation \"{conversation}\"",
                    remove.user_id
                ),
            ));
        }
        let frame = ServerFrame::MemberRemoved {
            conversation_id: conversation.clone(),
            user_id: remove.user_id.clone(),
            removed_by: p.user.clone(),
        };
        self.announce(&conversation, &frame).await;
        if !leaving {
            // The removed user is no longer subscribed: tell their sockets directly.
            self.tell(
                MessageGroup::Conversation(conversation.clone()),
                vec![remove.user_id.clone()],
                &frame,
            )
            .await;
        }
        info!(conversation = %conversation, member = %remove.user_id, "member removed");
        self.audit(AuditAction::MemberRemoved, |e| {
            e.conversation(&conversation).user(&remove.user_id)
        })
        .await;
        Ok(Some(self.ack().conversation(conversation).into()))
    }
}
