//! Roles and the seed's permission matrix.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A user's role inside one tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Role {
    Owner,
    Admin,
    User,
}

/// The actions the seed's `permissionLevels` table grants per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Create conversations (channels).
    CreateChannels,
    /// Add other users to conversations.
    InviteUsers,
    /// Delete messages written by others.
    DeleteMessages,
    /// Read every file of the tenant without an explicit share.
    AccessAllFiles,
}

impl Permission {
    pub const ALL: [Permission; 4] = [
        Permission::CreateChannels,
        Permission::InviteUsers,
        Permission::DeleteMessages,
        Permission::AccessAllFiles,
    ];

    /// The seed's name for this permission.
    pub fn name(self) -> &'static str {
        match self {
            Permission::CreateChannels => "canCreateChannels",
            Permission::InviteUsers => "canInviteUsers",
            Permission::DeleteMessages => "canDeleteMessages",
            Permission::AccessAllFiles => "canAccessAllFiles",
        }
    }
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::User];

    /// The permission matrix, exactly as the seed architecture defines it.
    pub fn can(self, permission: Permission) -> bool {
        use Permission::*;
        match (self, permission) {
            (Role::Owner, _) => true,
            (Role::Admin, CreateChannels | InviteUsers | AccessAllFiles) => true,
            (Role::Admin, DeleteMessages) => false,
            (Role::User, _) => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "OWNER",
            Role::Admin => "ADMIN",
            Role::User => "USER",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role string is not one of OWNER, ADMIN, USER.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role {0:?} is not one of OWNER, ADMIN, USER")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "OWNER" => Ok(Role::Owner),
            "ADMIN" => Ok(Role::Admin),
            "USER" => Ok(Role::User),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_matches_the_seed() {
        let expected = [
            (Role::Owner, [true, true, true, true]),
            (Role::Admin, [true, true, false, true]),
            (Role::User, [false, false, false, false]),
        ];
        for (role, row) in expected {
            for (permission, allowed) in Permission::ALL.into_iter().zip(row) {
                assert_eq!(
                    role.can(permission),
                    allowed,
                    "{role} {}",
                    permission.name()
                );
            }
        }
    }

    #[test]
    fn roles_round_trip_through_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{role}\""));
        }
        assert!("owner".parse::<Role>().is_err());
    }
}
