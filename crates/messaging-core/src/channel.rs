//! Channel names `client:{clientId}:{kind}:{conversationId}`, parsed and formatted here only.
//!
//! A `ChannelName` can only be built from a [`TenantId`], and one parsed from a client's frame
//! has to be checked against the caller's tenant with [`ChannelName::within`] before its
//! conversation id can be used.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, IdError, TenantId};

/// What a conversation is about (the seed's channel types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// Tenant-wide chat, open to every user of the tenant.
    General,
    /// A project's chat: members only.
    Project,
    /// A file's comment thread: members only.
    File,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 3] = [
        ChannelKind::General,
        ChannelKind::Project,
        ChannelKind::File,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::General => "general",
            ChannelKind::Project => "project",
            ChannelKind::File => "file",
        }
    }
}

impl FromStr for ChannelKind {
    type Err = ChannelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ChannelError::UnknownKind(s.to_owned()))
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a channel name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    #[error("channel must look like client:{{clientId}}:{{kind}}:{{conversationId}}")]
    Malformed,
    #[error("channel kind {0:?} is not one of general, project, file")]
    UnknownKind(String),
    #[error("channel has an invalid part: {0}")]
    BadId(#[from] IdError),
    #[error("channel belongs to another tenant")]
    CrossTenant,
}

/// A tenant-scoped channel. The tenant is part of the value, never implied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChannelName {
    tenant: TenantId,
    kind: ChannelKind,
    conversation: ConversationId,
}

impl TenantId {
    /// The only way to make a channel: from the tenant it belongs to.
    pub fn channel(&self, kind: ChannelKind, conversation: &ConversationId) -> ChannelName {
        ChannelName {
            tenant: self.clone(),
            kind,
            conversation: conversation.clone(),
        }
    }
}

impl TenantId {
    /// The channel of a file's comment thread: kind `file`, named by the file id.
    pub fn file_channel(&self, file: &crate::ids::FileId) -> ChannelName {
        ChannelName {
            tenant: self.clone(),
            kind: ChannelKind::File,
            conversation: file.thread(),
        }
    }
}

impl ChannelName {
    /// Parses `client:{clientId}:{kind}:{conversationId}`. The seed's short form
    /// `client:{clientId}:general` names the tenant's `general` conversation.
    pub fn parse(raw: &str) -> Result<Self, ChannelError> {
        let mut parts = raw.split(':');
        if parts.next() != Some("client") {
            return Err(ChannelError::Malformed);
        }
        let tenant = TenantId::parse(parts.next().ok_or(ChannelError::Malformed)?)?;
        let kind: ChannelKind = parts.next().ok_or(ChannelError::Malformed)?.parse()?;
        let conversation = match (parts.next(), kind) {
            (Some(id), _) => ConversationId::parse(id)?,
            (None, ChannelKind::General) => ConversationId::parse("general")?,
            (None, _) => return Err(ChannelError::Malformed),
        };
        if parts.next().is_some() {
            return Err(ChannelError::Malformed);
        }
        Ok(ChannelName {
            tenant,
            kind,
            conversation,
        })
    }

    /// The conversation this channel names, provided it belongs to `tenant`.
    pub fn within(&self, tenant: &TenantId) -> Result<&ConversationId, ChannelError> {
        if &self.tenant == tenant {
            Ok(&self.conversation)
        } else {
            Err(ChannelError::CrossTenant)
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    pub fn conversation(&self) -> &ConversationId {
        &self.conversation
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "client:{}:{}:{}",
            self.tenant, self.kind, self.conversation
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._-]{1,20}"
    }

    fn kind() -> impl Strategy<Value = ChannelKind> {
        prop::sample::select(ChannelKind::ALL.to_vec())
    }

    #[test]
    fn seed_examples_parse() {
        let general = ChannelName::parse("client:123:general").unwrap();
        assert_eq!(general.to_string(), "client:123:general:general");
        let project = ChannelName::parse("client:123:project:456").unwrap();
        assert_eq!(project.kind(), ChannelKind::Project);
        assert_eq!(project.conversation().as_str(), "456");
        assert_eq!(
            ChannelName::parse("client:123:file:789")
                .unwrap()
                .to_string(),
            "client:123:file:789"
        );
    }

    #[test]
    fn malformed_channels_are_refused_with_a_reason() {
        assert_eq!(
            ChannelName::parse("tenant:1:general"),
            Err(ChannelError::Malformed)
        );
        assert_eq!(
            ChannelName::parse("client:1:project"),
            Err(ChannelError::Malformed)
        );
        assert_eq!(
            ChannelName::parse("client:1:project:2:3"),
            Err(ChannelError::Malformed)
        );
        assert_eq!(
            ChannelName::parse("client:1:secret:2"),
            Err(ChannelError::UnknownKind("secret".into()))
        );
        assert!(matches!(
            ChannelName::parse("client:1#x:general"),
            Err(ChannelError::BadId(_))
        ));
    }

    proptest! {
        #[test]
        fn channels_round_trip(t in id(), k in kind(), c in id()) {
            let tenant = TenantId::parse(t).unwrap();
            let conversation = ConversationId::parse(c).unwrap();
            let channel = tenant.channel(k, &conversation);
            let parsed = ChannelName::parse(&channel.to_string()).unwrap();
            prop_assert_eq!(&parsed, &channel);
            prop_assert_eq!(parsed.within(&tenant).unwrap(), &conversation);
        }

        #[test]
        fn a_channel_of_tenant_a_never_resolves_for_tenant_b(
            a in id(), b in id(), k in kind(), c in id()
        ) {
            prop_assume!(a != b);
            let (a, b) = (TenantId::parse(a).unwrap(), TenantId::parse(b).unwrap());
            let channel = a.channel(k, &ConversationId::parse(c).unwrap());
            let reparsed = ChannelName::parse(&channel.to_string()).unwrap();
            prop_assert_eq!(reparsed.within(&b), Err(ChannelError::CrossTenant));
        }

        #[test]
        fn arbitrary_text_never_parses_into_a_foreign_tenant(
            raw in "client:[A-Za-z0-9:#._-]{0,40}", mine in id()
        ) {
            // Whatever a client writes, it either fails to parse, or it names exactly the
            // tenant spelled in its second segment, which `within` then compares.
            let mine = TenantId::parse(mine).unwrap();
            if let Ok(channel) = ChannelName::parse(&raw) {
                let spelled = raw.split(':').nth(1).unwrap();
                prop_assert_eq!(channel.tenant().as_str(), spelled);
                prop_assert_eq!(channel.within(&mine).is_ok(), spelled == mine.as_str());
            }
        }
    }
}
