//! The reads, served alike over the socket (`route`) and the HTTP API: LIST_CONVERSATIONS,
//! GET_HISTORY (pages and catch-up), GET_THREAD, SEARCH and GET_PRESENCE. Every one is
//! members-only (search: over the caller's conversations only) and pages through signed
//! cursors bound to the caller and the request. Every page is bounded in items (its `limit`)
//! and in bytes: a page whose list would pass [`MAX_LIST_BYTES`] stops early and its cursor
//! continues from there, so an answer always fits API Gateway's 128 KB message.

use std::collections::HashSet;

use messaging_aws::{MessageRange, MessagingTable};
use messaging_core::protocol::{
    fitting, GetHistory, GetPresence, GetThread, ListConversations, PageOrder, Search, ServerFrame,
    MAX_LIST_BYTES,
};
use messaging_core::search::query_words;
use messaging_core::signed::Signer;
use messaging_core::time::now_millis;
use messaging_core::{ConversationId, ErrorCode, Principal, ProtocolError, UserId};

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

/// Members listed on the first page of a conversation's history (GET_PRESENCE has the rest).
pub const MEMBERS_IN_HISTORY: usize = 100;
/// What those members may take of a history page's bytes.
const MEMBERS_BYTES: usize = 16 * 1024;

/// The caller's conversations, most recently active first, with read markers and unread
/// counts, a page at a time.
pub async fn list_conversations(
    service: Reads<'_>,
    p: &Principal,
    list: ListConversations,
    request_id: Option<String>,
) -> Answer {
    let scope = "conversations";
    let after = match &list.cursor {
        Some(cursor) => {
            let position = service.cursors.open(cursor, &p.tenant, &p.user, scope)?;
            let (at, id) = position.split_once('|').ok_or_else(bad_position)?;
            let id = ConversationId::parse(id).map_err(|_| bad_position())?;
            Some((at.to_owned(), id))
        }
        None => None,
    };
    let (mut conversations, mut next) = service
        .table
        .conversation_summaries(&p.tenant, &p.user, after.as_ref(), usize::from(list.limit))
        .await?;
    let kept = fitting(&conversations, MAX_LIST_BYTES);
    if kept < conversations.len() {
        conversations.truncate(kept);
        next = conversations.last().map(|c| {
            (
                c.conversation.last_activity.clone(),
                c.conversation.conversation_id.clone(),
            )
        });
    }
    Ok(ServerFrame::Conversations {
        request_id,
        conversations,
        next_cursor: next.map(|(at, id)| {
            service
                .cursors
                .issue(&p.tenant, &p.user, scope, &format!("{at}|{id}"))
        }),
    })
}

fn bad_position() -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidCursor, "cursor refused: bad position")
}

fn seq_position(position: String) -> Result<u64, ProtocolError> {
    position.parse().map_err(|_| bad_position())
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
    let mut page = service
        .table
        .message_page(
            &p.tenant,
            &conversation,
            range,
            usize::from(history.limit),
            now_millis(),
        )
        .await?;
    let (mut members, mut more_members) = if history.cursor.is_none() {
        let (members, next) = service
            .table
            .members_page(&p.tenant, &conversation, None, MEMBERS_IN_HISTORY)
            .await?;
        (members, next.is_some())
    } else {
        (Vec::new(), false)
    };
    let kept = fitting(&members, MEMBERS_BYTES);
    if kept < members.len() {
        members.truncate(kept);
        more_members = true;
    }
    let kept = fitting(&page.messages, MAX_LIST_BYTES - MEMBERS_BYTES);
    if kept < page.messages.len() {
        page.messages.truncate(kept);
        page.next = page.messages.last().map(|m| m.seq);
    }
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
        more_members,
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
    let mut page = service
        .table
        .thread_replies(
            &p.tenant,
            &conversation,
            seq,
            after,
            usize::from(thread.limit),
        )
        .await?;
    // The parent is one message (at most a frame's worth): the replies get the rest.
    let parent_bytes = serde_json::to_vec(&parent).map_or(0, |v| v.len());
    let kept = fitting(&page.messages, MAX_LIST_BYTES.saturating_sub(parent_bytes));
    if kept < page.messages.len() {
        page.messages.truncate(kept);
        page.next = page.messages.last().map(|m| m.seq);
    }
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
    // "search-blocks": positions in the block index (a cursor of the earlier per-word index
    // is refused as INVALID_CURSOR, not misread).
    let scope = format!("search-blocks:{}", words.join(" "));
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
    let (found, mut next) = service
        .table
        .search_messages(
            &p.tenant,
            &readable,
            &words,
            start,
            usize::from(search.limit),
        )
        .await?;
    let (mut results, positions): (Vec<_>, Vec<_>) = found.into_iter().unzip();
    let kept = fitting(&results, MAX_LIST_BYTES);
    if kept < results.len() {
        results.truncate(kept);
        next = positions.get(kept - 1).cloned();
    }
    Ok(ServerFrame::SearchResults {
        request_id,
        query: search.query,
        results,
        next_cursor: next
            .map(|position| service.cursors.issue(&p.tenant, &p.user, &scope, &position)),
    })
}

/// Who is online (or away) in a conversation: its members (by user id) with their presence,
/// a page at a time.
pub async fn presence(
    service: Reads<'_>,
    p: &Principal,
    get: GetPresence,
    request_id: Option<String>,
) -> Answer {
    let conversation = get.target.resolve(&p.tenant)?;
    require_member(service.table, p, &conversation).await?;
    let scope = format!("presence:{conversation}");
    let after = match &get.cursor {
        Some(cursor) => {
            let position = service.cursors.open(cursor, &p.tenant, &p.user, &scope)?;
            Some(UserId::parse(position).map_err(|_| bad_position())?)
        }
        None => None,
    };
    let (mut members, mut next) = service
        .table
        .members_page(
            &p.tenant,
            &conversation,
            after.as_ref(),
            usize::from(get.limit),
        )
        .await?;
    let kept = fitting(&members, MAX_LIST_BYTES);
    if kept < members.len() {
        members.truncate(kept);
        next = members.last().map(|m| m.user_id.clone());
    }
    Ok(ServerFrame::PresenceList {
        request_id,
        conversation_id: conversation,
        members,
        next_cursor: next.map(|u| {
            service
                .cursors
                .issue(&p.tenant, &p.user, &scope, u.as_str())
        }),
    })
}
