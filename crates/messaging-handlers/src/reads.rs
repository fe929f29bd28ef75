//! The reads, served alike over the socket (`route`) and the HTTP API: LIST_CONVERSATIONS,
//! GET_HISTORY (pages and catch-up), GET_THREAD, SEARCH and GET_PRESENCE. Every one is
//! members-only (search: over the caller's conversations only) and pages through signed
//! cursors bound to the caller and the request.

use std::collections::HashSet;

use messaging_aws::{MessageRange, MessagingTable};
use messaging_core::protocol::{
    ConversationRef, GetHistory, GetThread, PageOrder, Search, ServerFrame,
};
use messaging_core::search::query_words;
use messaging_core::signed::Signer;
use messaging_core::{ErrorCode, Principal, ProtocolError};

use crate::websocket::require_member;

/// A read's answer: the frame the socket or the HTTP API sends back.
type Answer = Result<ServerFrame, ProtocolError>;

/// What the reads need: the table and the cursor signer (the `route` function and the HTTP
/// API both have them).
#[derive(Clone, Copy)]
pub struct Reads<'a> {
    pub table: &'a MessagingTable,
    pub cursors: &'a Signer,
}

/// The caller's conversations, most recently active first, with read markers and unread
/// counts.
pub async fn list_conversations(
    service: Reads<'_>,
    p: &Principal,
    request_id: Option<String>,
) -> Answer {
    let conversations = service
        .table
        .conversation_summaries(&p.tenant, &p.user)
        .await?;
    Ok(ServerFrame::Conversations {
        request_id,
        conversations,
    })
}

fn seq_position(position: String) -> Result<u64, ProtocolError> {
    position
        .parse()
        .map_err(|_| ProtocolError::new(ErrorCode::InvalidCursor, "cursor refused: bad position"))
}

/// Newest first (`cursor` continues older), or with `sinceSeq` everything after it oldest
/// first: what a reconnecting client missed. The first page also lists the members.
pub async fn history(
    service: Reads<'_>,
    p: &Principal,
    history: GetHistory,
    request_id: Option<String>,
) -> Answer {
    let conversation = history.target.resolve(&p.tenant)?;
    require_member(service.table, p, &conversation).await?;
    let scope = match history.since_seq {
        Some(since) => format!("history:{conversation}:since:{since}"),
        None => format!("history:{conversation}:newest"),
    };
    let position = match &history.cursor {
        Some(cursor) => Some(seq_position(
            service.cursors.open(cursor, &p.tenant, &p.user, &scope)?,
        )?),
        None => None,
    };
    let (range, order) = match history.since_seq {
        Some(since) => (
            MessageRange::OldestAfter(position.unwrap_or(since)),
            PageOrder::OldestFirst,
        ),
        None => (MessageRange::NewestBefore(position), PageOrder::NewestFirst),
    };
    let page = service
        .table
        .message_page(&p.tenant, &conversation, range, usize::from(history.limit))
        .await?;
    let members = if history.cursor.is_none() {
        service
            .table
            .members_with_presence(&p.tenant, &conversation)
            .await?
    } else {
        Vec::new()
    };
    let next_cursor = page.next.map(|seq| {
        service
            .cursors
            .issue(&p.tenant, &p.user, &scope, &seq.to_string())
    });
    Ok(ServerFrame::History {
        request_id,
        conversation_id: conversation,
        order,
        messages: page.messages,
        next_cursor,
        members,
    })
}

/// A message and its replies, oldest first.
pub async fn thread(
    service: Reads<'_>,
    p: &Principal,
    thread: GetThread,
    request_id: Option<String>,
) -> Answer {
    let (conversation, seq) = (
        thread.message.target.resolve(&p.tenant)?,
        thread.message.seq,
    );
    require_member(service.table, p, &conversation).await?;
    let parent = service
        .table
        .message(&p.tenant, &conversation, seq)
        .await?
        .map(|m| m.view().clone())
        .filter(|m| m.parent_seq.is_none())
        .ok_or_else(|| {
            ProtocolError::new(
                ErrorCode::MessageNotFound,
                format!("conversation \"{conversation}\" has no thread at message {seq}"),
            )
        })?;
    let scope = format!("thread:{conversation}:{seq}");
    let after = match &thread.cursor {
        Some(cursor) => Some(seq_position(
            service.cursors.open(cursor, &p.tenant, &p.user, &scope)?,
        )?),
        None => None,
    };
    let page = service
        .table
        .thread_replies(
            &p.tenant,
            &conversation,
            seq,
            after,
            usize::from(thread.limit),
        )
        .await?;
    Ok(ServerFrame::Thread {
        request_id,
        conversation_id: conversation,
        parent,
        replies: page.messages,
        next_cursor: page.next.map(|s| {
            service
                .cursors
                .issue(&p.tenant, &p.user, &scope, &s.to_string())
        }),
    })
}

/// Messages with every word of the query, in the caller's conversations only.
pub async fn search(
    service: Reads<'_>,
    p: &Principal,
    search: Search,
    request_id: Option<String>,
) -> Answer {
    let words = query_words(&search.query);
    let scope = format!("search:{}", words.join(" "));
    let start = match &search.cursor {
        Some(cursor) => Some(service.cursors.open(cursor, &p.tenant, &p.user, &scope)?),
        None => None,
    };
    let readable: HashSet<_> = service
        .table
        .user_conversations(&p.tenant, &p.user)
        .await?
        .into_iter()
        .collect();
    let (results, next) = service
        .table
        .search_messages(
            &p.tenant,
            &readable,
            &words,
            start,
            usize::from(search.limit),
        )
        .await?;
    Ok(ServerFrame::SearchResults {
        request_id,
        query: search.query,
        results,
        next_cursor: next
            .map(|position| service.cursors.issue(&p.tenant, &p.user, &scope, &position)),
    })
}

/// Who is online (or away) in a conversation: every member with their presence.
pub async fn presence(
    service: Reads<'_>,
    p: &Principal,
    target: &ConversationRef,
    request_id: Option<String>,
) -> Answer {
    let conversation = target.resolve(&p.tenant)?;
    require_member(service.table, p, &conversation).await?;
    let members = service
        .table
        .members_with_presence(&p.tenant, &conversation)
        .await?;
    Ok(ServerFrame::PresenceList {
        request_id,
        conversation_id: conversation,
        members,
    })
}
