//! Who may do what to a conversation.
//!
//! A [`Principal`] is the caller as the token (at connect) or the stored connection (later)
//! says; it is never read from a message body.

use serde::{Deserialize, Serialize};

use crate::channel::ChannelKind;
use crate::ids::{TenantId, UserId};
use crate::role::{Permission, Role};

/// An authenticated caller: tenant, user and role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    pub tenant: TenantId,
    pub user: UserId,
    pub role: Role,
    /// Display name from the token, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The result of an access check, with the reason when refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// The role lacks the named permission.
    MissingPermission(Permission),
    /// The conversation is members-only and the caller is not a member.
    MembersOnly,
    /// Only the author of the message may do this.
    AuthorOnly,
}

impl Principal {
    /// Creating a conversation needs `canCreateChannels`.
    pub fn may_create_conversation(&self) -> Decision {
        require(self.role, Permission::CreateChannels)
    }

    /// Naming other users as members (at creation or later) needs `canInviteUsers`.
    pub fn may_add_members(&self) -> Decision {
        require(self.role, Permission::InviteUsers)
    }

    /// Joining on one's own: anyone may join a `general` conversation of their tenant; a
    /// `project` or `file` conversation is members-only, so joining it means inviting oneself,
    /// which needs `canInviteUsers`.
    pub fn may_join(&self, kind: ChannelKind) -> Decision {
        match kind {
            ChannelKind::General => Decision::Allow,
            ChannelKind::Project | ChannelKind::File => {
                match require(self.role, Permission::InviteUsers) {
                    Decision::Allow => Decision::Allow,
                    _ => Decision::MembersOnly,
                }
            }
        }
    }

    /// Reading or writing a conversation: members only, whatever the role. (OWNER and ADMIN
    /// can join first; that leaves a trace in the member list, by design.)
    pub fn may_participate(&self, is_member: bool) -> Decision {
        if is_member {
            Decision::Allow
        } else {
            Decision::MembersOnly
        }
    }
}

impl Principal {
    /// Editing a message: its author only, whatever the role (an edit speaks for the author).
    pub fn may_edit(&self, author: &UserId) -> Decision {
        if *author == self.user {
            Decision::Allow
        } else {
            Decision::AuthorOnly
        }
    }

    /// Deleting a message: its author, or a role with `canDeleteMessages` (OWNER).
    pub fn may_delete(&self, author: &UserId) -> Decision {
        if *author == self.user {
            Decision::Allow
        } else {
            require(self.role, Permission::DeleteMessages)
        }
    }

    /// Removing a member: anyone may leave; removing someone else needs `canInviteUsers`.
    pub fn may_remove_member(&self, member: &UserId) -> Decision {
        if *member == self.user {
            Decision::Allow
        } else {
            require(self.role, Permission::InviteUsers)
        }
    }
}

fn require(role: Role, permission: Permission) -> Decision {
    if role.can(permission) {
        Decision::Allow
    } else {
        Decision::MissingPermission(permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role) -> Principal {
        Principal {
            tenant: TenantId::parse("t1").unwrap(),
            user: UserId::parse("u1").unwrap(),
            role,
            name: None,
        }
    }

    #[test]
    fn only_owner_and_admin_create_and_invite() {
        for role in Role::ALL {
            let p = principal(role);
            let privileged = role != Role::User;
            assert_eq!(p.may_create_conversation() == Decision::Allow, privileged);
            assert_eq!(p.may_add_members() == Decision::Allow, privileged);
        }
        assert_eq!(
            principal(Role::User).may_create_conversation(),
            Decision::MissingPermission(Permission::CreateChannels)
        );
    }

    #[test]
    fn users_join_general_but_not_members_only_conversations() {
        let user = principal(Role::User);
        assert_eq!(user.may_join(ChannelKind::General), Decision::Allow);
        assert_eq!(user.may_join(ChannelKind::Project), Decision::MembersOnly);
        assert_eq!(user.may_join(ChannelKind::File), Decision::MembersOnly);
        assert_eq!(
            principal(Role::Admin).may_join(ChannelKind::Project),
            Decision::Allow
        );
    }

    #[test]
    fn authors_edit_owners_delete_anything_members_may_leave() {
        let other = UserId::parse("someone-else").unwrap();
        let me = UserId::parse("u1").unwrap();
        for role in Role::ALL {
            let p = principal(role);
            assert_eq!(p.may_edit(&me), Decision::Allow);
            assert_eq!(p.may_edit(&other), Decision::AuthorOnly);
            assert_eq!(p.may_delete(&me), Decision::Allow);
            assert_eq!(p.may_remove_member(&me), Decision::Allow);
        }
        assert_eq!(principal(Role::Owner).may_delete(&other), Decision::Allow);
        assert_eq!(
            principal(Role::Admin).may_delete(&other),
            Decision::MissingPermission(Permission::DeleteMessages)
        );
        assert_eq!(
            principal(Role::User).may_remove_member(&other),
            Decision::MissingPermission(Permission::InviteUsers)
        );
        assert_eq!(
            principal(Role::Admin).may_remove_member(&other),
            Decision::Allow
        );
    }

    #[test]
    fn participation_needs_membership_for_every_role() {
        for role in Role::ALL {
            assert_eq!(
                principal(role).may_participate(false),
                Decision::MembersOnly
            );
            assert_eq!(principal(role).may_participate(true), Decision::Allow);
        }
    }
}
