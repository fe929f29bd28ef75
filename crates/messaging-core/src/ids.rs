//! Identifier newtypes, parsed once at the edge.
//!
//! Ids end up inside DynamoDB keys (`CLIENT#{tenant}|CONVERSATION#{id}#…`) and channel names
//! (`client:{tenant}:{kind}:{id}`). The alphabet below excludes both separators (`#`, `:`), so
//! no id can end one key segment early and address another tenant's or another entity's items.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} is {len} characters long; the limit is {max}")]
    TooLong {
        kind: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{kind} contains {found:?}; only letters, digits, '-', '_' and '.' are allowed")]
    BadCharacter { kind: &'static str, found: char },
}

fn validate(kind: &'static str, raw: &str, max: usize, extra: &[char]) -> Result<(), IdError> {
    if raw.is_empty() {
        return Err(IdError::Empty { kind });
    }
    let len = raw.chars().count();
    if len > max {
        return Err(IdError::TooLong { kind, len, max });
    }
    match raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') || extra.contains(c)))
    {
        Some(found) => Err(IdError::BadCharacter { kind, found }),
        None => Ok(()),
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $extra:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Human name of this id, used in error messages.
            pub const KIND: &'static str = $kind;

            pub fn parse(raw: impl Into<String>) -> Result<Self, IdError> {
                let raw = raw.into();
                validate($kind, &raw, $max, $extra)?;
                Ok(Self(raw))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A tenant: one StackPro portal (the seed's `clientId`). Every table key and channel is
    /// built from one.
    TenantId, "clientId", 64, &[]
);
id_type!(
    /// A user inside a tenant (the token's `sub`).
    UserId, "userId", 128, &[]
);
id_type!(
    /// A conversation inside a tenant.
    ConversationId, "conversationId", 64, &[]
);
id_type!(
    /// A stored message (time-ordered, so its key sorts history by time).
    MessageId, "messageId", 64, &[]
);
id_type!(
    /// A shared file inside a tenant.
    FileId, "fileId", 64, &[]
);
id_type!(
    /// A comment on a file.
    CommentId, "commentId", 64, &[]
);
id_type!(
    /// An API Gateway WebSocket connection id (base64-like, e.g. `TWegAcC4EowCHnA=`).
    ConnectionId, "connectionId", 128, &['=', '+', '/']
);

impl UserId {
    /// The server's own name for what no user wrote: the sender of a void (a `seq` that holds
    /// no message). No token may carry it (`token::principal_from` refuses it), so no user
    /// can speak as the server or be mistaken for it.
    pub const SYSTEM: &'static str = "stackpro.system";

    pub fn system() -> Self {
        Self(Self::SYSTEM.to_owned())
    }

    pub fn is_system(&self) -> bool {
        self.0 == Self::SYSTEM
    }

    /// The sender of a message whose author was erased (`crate::lifecycle`): their `seq`
    /// stays, under no one's name.
    pub const ERASED: &'static str = "stackpro.erased";

    pub fn erased() -> Self {
        Self(Self::ERASED.to_owned())
    }

    /// The server's own names ([`Self::SYSTEM`], [`Self::ERASED`], and any other `stackpro.`
    /// id): never a user's, so no token may carry one.
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with("stackpro.")
    }
}

impl FileId {
    /// The id of the file's comment thread: a conversation named like the file. Both ids have
    /// one alphabet and one length limit, so every file id is a conversation id.
    pub fn thread(&self) -> ConversationId {
        ConversationId(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_key_and_channel_separators() {
        for bad in ["a#b", "a:b", "x#CLIENT#1", "x y", "é"] {
            assert!(TenantId::parse(bad).is_err(), "{bad} accepted");
            assert!(ConversationId::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(ConnectionId::parse("a#b").is_err());
    }

    #[test]
    fn the_system_sender_is_a_valid_id_and_knows_itself() {
        assert!(UserId::system().is_system());
        assert_eq!(UserId::parse(UserId::SYSTEM).unwrap(), UserId::system());
        assert!(!UserId::parse("stackpro.system2").unwrap().is_system());
        assert!(UserId::system().is_reserved() && UserId::erased().is_reserved());
        assert!(!UserId::parse("stackpro").unwrap().is_reserved());
        assert!(!UserId::parse("alice.stackpro.").unwrap().is_reserved());
    }

    #[test]
    fn ids_accept_realistic_values() {
        TenantId::parse("123").unwrap();
        UserId::parse("user-123").unwrap();
        ConversationId::parse("project_456.v2").unwrap();
        ConnectionId::parse("TWegAcC4EowCHnA=").unwrap();
    }

    #[test]
    fn errors_name_the_field_and_the_problem() {
        assert_eq!(
            ConversationId::parse("").unwrap_err().to_string(),
            "conversationId must not be empty"
        );
        assert_eq!(
            TenantId::parse("a:b").unwrap_err().to_string(),
            "clientId contains ':'; only letters, digits, '-', '_' and '.' are allowed"
        );
        assert!(TenantId::parse("x".repeat(65))
            .unwrap_err()
            .to_string()
            .contains("limit is 64"));
    }

    #[test]
    fn ids_deserialize_through_validation() {
        let ok: ConversationId = serde_json::from_str("\"general\"").unwrap();
        assert_eq!(ok.as_str(), "general");
        assert!(serde_json::from_str::<ConversationId>("\"a#b\"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn every_file_id_is_a_valid_conversation_id(raw in "[A-Za-z0-9._-]{1,64}") {
            let file = FileId::parse(raw).unwrap();
            proptest::prop_assert_eq!(ConversationId::parse(file.as_str()), Ok(file.thread()));
        }
    }
}
