//! Domain of StackPro Messaging.
//!
//! Everything here is pure: no AWS SDK, no I/O. It owns the rules that keep tenants apart
//! (ids that cannot smuggle key separators, channels that carry their tenant), the
//! OWNER / ADMIN / USER permission matrix, token verification, and the JSON frames clients
//! exchange with the WebSocket API.

pub mod access;
pub mod audit;
pub mod channel;
pub mod encoding;
pub mod error;
pub mod files;
pub mod ids;
pub mod jobs;
pub mod lifecycle;
pub mod limits;
pub mod notify;
pub mod protocol;
pub mod role;
pub mod search;
pub mod shards;
pub mod signed;
pub mod templates;
pub mod time;
pub mod token;
pub mod unsubscribe;
pub mod uploads;

pub use access::Principal;
pub use channel::{ChannelKind, ChannelName};
pub use error::{ErrorCode, ProtocolError};
pub use ids::{
    CommentId, ConnectionId, ConversationId, FileId, IdError, MessageId, TenantId, UserId,
};
pub use role::{Permission, Role};
