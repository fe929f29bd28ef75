import { useEffect, useRef, useState, type KeyboardEvent } from "react";
import type { Attachment, Message, PendingMessage } from "@stackpro/messaging-client";
import { useConversation, useConversations, useMessagingClient, usePresence, type UseConversation } from "@stackpro/messaging-react";
import type { Me } from "./app.js";
import { useReport } from "./toast.js";

export function Chat({ me, conversationId, onThread }: { me: Me; conversationId: string; onThread: (seq: number) => void }) {
  const chat = useConversation(conversationId);
  const presence = usePresence(conversationId);
  const { conversations } = useConversations();
  const report = useReport();
  const [editing, setEditing] = useState<number | undefined>();
  const [text, setText] = useState("");
  const list = useRef<HTMLOListElement>(null);
  const summary = conversations.find((c) => c.conversationId === conversationId);
  const newest = chat.messages[chat.messages.length - 1]?.seq;

  // Read receipts: what is shown while the page is visible is read.
  useEffect(() => {
    if (newest !== undefined && document.visibilityState === "visible") void chat.markRead(newest).catch(() => {});
  }, [newest, chat.markRead]);
  // Follow the newest message.
  useEffect(() => {
    const el = list.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [newest, chat.pending.length]);

  const submit = () => {
    if (!text.trim()) return;
    if (editing !== undefined) void report(chat.edit(editing, text));
    else void report(chat.send(text)); // a failure stays in the list as a failed echo (retry or discard)
    setEditing(undefined);
    setText("");
  };
  const keyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      submit();
    }
    if (event.key === "Escape") {
      setEditing(undefined);
      setText("");
    }
  };
  const typing = chat.typingUsers;
  const pending = chat.pending.filter((p) => p.parentSeq === undefined);

  return (
    <section id="chat">
      <div id="chat-header">
        <h2 data-testid="chat-title">{summary ? `${summary.title ?? summary.conversationId}  ·  ${summary.channel}` : conversationId}</h2>
        <ul id="members" data-testid="members">
          {presence.members.map((m) => (
            <li key={m.userId} data-testid="member" data-status={m.status} title={m.status}>
              <span className={`dot ${m.status}`} />
              <span>{m.userId}</span>
            </li>
          ))}
        </ul>
      </div>
      <ol id="messages" data-testid="messages" ref={list}>
        {chat.hasOlder && (
          <li className="gap">
            <button type="button" data-testid="load-older" disabled={chat.loadingOlder} onClick={() => void report(chat.loadOlder())}>
              Older messages
            </button>
          </li>
        )}
        {chat.status === "ended" && <li className="gap">{chat.error?.message ?? "This conversation ended."}</li>}
        {chat.messages.map((m) => (
          <MessageItem key={m.seq} me={me} m={m} chat={chat} onEdit={() => (setEditing(m.seq), setText(m.content.text))} onThread={() => onThread(m.seq)} />
        ))}
        {chat.gaps.map((g) => (
          <li key={`gap${g.fromSeq}`} className="gap" data-testid="gap">
            Messages {g.fromSeq}–{g.toSeq} are no longer in history.
          </li>
        ))}
        {pending.map((p) => (
          <PendingItem key={p.clientMessageId} p={p} chat={chat} />
        ))}
      </ol>
      <div id="typing" data-testid="typing">
        {typing.length === 0 ? "" : `${typing.join(", ")} ${typing.length === 1 ? "is" : "are"} typing…`}
      </div>
      {editing !== undefined && (
        <div id="composer-mode" data-testid="composer-mode">
          <span>Editing message #{editing}</span>{" "}
          <button type="button" data-testid="cancel-mode" onClick={() => (setEditing(undefined), setText(""))}>
            Cancel
          </button>
        </div>
      )}
      <form id="send-form" onSubmit={(e) => (e.preventDefault(), submit())}>
        <textarea
          id="composer"
          rows={2}
          placeholder="Type a message… (Enter sends, Shift+Enter for a new line)"
          disabled={chat.status === "ended"}
          data-testid="composer"
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            if (editing === undefined) chat.keystroke();
          }}
          onKeyDown={keyDown}
          onBlur={() => chat.stopTyping()}
        />
        <button id="send" disabled={chat.status === "ended"} data-testid="send">
          Send
        </button>
      </form>
    </section>
  );
}

function MessageItem({ me, m, chat, onEdit, onThread }: { me: Me; m: Message; chat: UseConversation; onEdit: () => void; onThread: () => void }) {
  const report = useReport();
  const mine = m.senderId === me.user;
  // From the portal's backend (server API): a notice, not a person's message.
  if (m.content.type === "system" && !m.deleted) {
    return (
      <li data-testid="message" data-seq={m.seq} data-kind="system" className="system">
        <span className="text" data-testid="message-text">
          {m.content.text}
        </span>
        <span className="meta">{new Date(m.timestamp).toLocaleString()}</span>
      </li>
    );
  }
  return (
    <li data-testid="message" data-seq={m.seq} className={[mine ? "mine" : "", m.deleted ? "deleted" : ""].join(" ").trim()}>
      <span className="meta">
        {m.senderName ?? m.senderId} · {new Date(m.timestamp).toLocaleTimeString()} · #{m.seq}
        {!m.deleted && (
          <span className="actions">
            <button type="button" data-testid="react" title="React" onClick={() => void report(chat.toggleReaction(m.seq, "👍"))}>
              👍
            </button>
            <button type="button" data-testid="reply" onClick={onThread}>
              Reply
            </button>
            {mine && (
              <button type="button" data-testid="edit" onClick={onEdit}>
                Edit
              </button>
            )}
            {(mine || me.role === "OWNER") && (
              <button type="button" data-testid="delete" onClick={() => void report(chat.remove(m.seq))}>
                Delete
              </button>
            )}
          </span>
        )}
      </span>
      <span className="text" data-testid="message-text">
        {m.deleted ? "message deleted" : m.content.text}
      </span>
      {!m.deleted && (m.content.attachments?.length ?? 0) > 0 && (
        <ul className="attachments">
          {m.content.attachments?.map((a) => <AttachmentItem key={a.fileId} a={a} />)}
        </ul>
      )}
      {m.edited && !m.deleted && (
        <span className="edited" data-testid="edited">
          {" "}
          (edited)
        </span>
      )}
      {Object.keys(m.reactions).length > 0 && (
        <div className="reactions" data-testid="reactions">
          {Object.entries(m.reactions).map(([emoji, users]) => (
            <button
              key={emoji}
              type="button"
              className={`reaction${users.includes(me.user) ? " mine" : ""}`}
              data-testid="reaction"
              title={users.join(", ")}
              onClick={() => void report(chat.toggleReaction(m.seq, emoji))}
            >
              {emoji} {users.length}
            </button>
          ))}
        </div>
      )}
      {m.threadCount > 0 && (
        <button type="button" className="thread-count" data-testid="thread-count" onClick={onThread}>
          {m.threadCount} {m.threadCount === 1 ? "reply" : "replies"}
        </button>
      )}
    </li>
  );
}

/** A file a message carries: its name and size; opened through a fresh presigned URL (needs `download`). */
function AttachmentItem({ a }: { a: Attachment }) {
  const client = useMessagingClient();
  const report = useReport();
  const open = async () => {
    const url = await report(client.getDownloadUrl(a.fileId));
    if (url) window.open(url.url, "_blank", "noopener");
  };
  return (
    <li data-testid="attachment">
      {a.mimeType.startsWith("image/") && <Preview a={a} />}
      📎 {a.name} <span className="muted">({formatSize(a.size)}{a.width && a.height ? `, ${a.width} × ${a.height}` : ""})</span>{" "}
      <button type="button" data-testid="attachment-open" onClick={() => void open()}>
        Open
      </button>
    </li>
  );
}

/** An image's preview: a fresh presigned URL of its small JPEG. Made a second or two after the
 * upload lands, so a missing one is asked for again a few times; a refused one says why. */
function Preview({ a }: { a: Attachment }) {
  const client = useMessagingClient();
  const [state, setState] = useState<{ url?: string; note?: string }>({});
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async (attempt: number) => {
      try {
        const url = await client.getDownloadUrl(a.fileId, { variant: "preview" });
        if (!stopped) setState({ url: url.url });
      } catch (e) {
        const error = e as { code?: string; message?: string };
        const later = error.code === "PREVIEW_NOT_AVAILABLE" && /yet/.test(error.message ?? "");
        if (stopped) return;
        if (later && attempt < 10) timer = setTimeout(() => void load(attempt + 1), 1000);
        else setState({ note: error.code === "PREVIEW_NOT_AVAILABLE" ? (error.message ?? "no preview") : "" });
      }
    };
    void load(0);
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [client, a.fileId]);
  if (state.url) return <img className="preview" data-testid="attachment-preview" src={state.url} alt={a.name} />;
  if (state.note) return <span className="muted" data-testid="attachment-no-preview">{state.note}</span>;
  return <span className="muted">preview…</span>;
}

function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** Your send before its ACK (dimmed), or given up (with what went wrong, retry and discard). */
function PendingItem({ p, chat }: { p: PendingMessage; chat: UseConversation }) {
  return (
    <li data-testid="pending" data-status={p.status} className={`mine ${p.status === "failed" ? "failed" : "pending"}`}>
      <span className="meta">
        {p.status === "failed" ? `not sent: ${p.error?.code ?? "error"} ${p.error?.message ?? ""}` : "sending…"}
        {p.status === "failed" && (
          <span className="actions">
            <button type="button" data-testid="retry" onClick={() => void chat.retry(p.clientMessageId)?.catch(() => {})}>
              Retry
            </button>
            <button type="button" data-testid="discard" onClick={() => chat.discard(p.clientMessageId)}>
              Discard
            </button>
          </span>
        )}
      </span>
      <span className="text">{p.content.text}</span>
    </li>
  );
}
