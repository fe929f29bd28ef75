import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StrictMode } from "react";
import { renderToString } from "react-dom/server";

import type { ConversationSummary, Message } from "@stackpro/messaging-client";
import {
  MessagingProvider,
  useConnectionState,
  useConversation,
  useConversations,
  useFileComments,
  useNotifications,
  usePresence,
  useThread,
} from "../src/index.js";
import { message } from "../../messaging-client/test/fakes.js";
import { render, setup, step, type Harness } from "./render.js";

/** A component that calls `use` and keeps what it returned. */
function probe<T>(use: () => T) {
  const seen = { current: undefined as T | undefined, renders: 0 };
  function Probe() {
    seen.current = use();
    seen.renders++;
    return null;
  }
  const get = (): T => {
    if (seen.current === undefined) throw new Error("not rendered");
    return seen.current;
  };
  return { seen, Probe, get };
}

const seqs = (list: readonly Message[]) => list.map((m) => m.seq);

/** Renders `p`'s probe under a provider of `h`'s client. */
function mount(h: Harness, p: { Probe: () => null }) {
  return render(
    <MessagingProvider client={h.client}>
      <p.Probe />
    </MessagingProvider>,
  );
}

function summary(conversationId: string, fields: Partial<ConversationSummary> = {}): ConversationSummary {
  return {
    conversationId,
    channel: `client:acme:project:${conversationId}`,
    kind: "project",
    createdBy: "alice",
    createdAt: "2026-12-01T00:00:00.000Z",
    lastActivity: "2026-12-01T00:00:00.000Z",
    lastSeq: 0,
    lastReadSeq: 0,
    unreadCount: 0,
    ...fields,
  };
}

/** Every frame of `type` the client sent, over every socket it opened. */
function sent(h: Harness, type: string) {
  return h.sockets.all.flatMap((s) => s.sentOfType(type));
}

describe("MessagingProvider and useConnectionState", () => {
  it("connects on mount, reports every state, and closes on unmount", async () => {
    const h = setup();
    const states: string[] = [];
    const p = probe(() => {
      const view = useConnectionState();
      if (states[states.length - 1] !== view.state) states.push(view.state);
      return view;
    });
    const app = await mount(h, p);
    await h.open();
    assert.equal(p.get().state, "connected");
    assert.equal(p.get().userId, "alice");
    await step(() => h.sockets.last.cut());
    assert.equal(p.get().state, "disconnected");
    assert.ok((p.get().retryInMs ?? -1) >= 0, "a disconnected view says when the next attempt is");
    await app.unmount();
    assert.equal(h.client.state, "closed");
    assert.deepEqual(states, ["initialized", "connecting", "connected", "disconnected"]);
  });

  it("in StrictMode keeps one connection and opens a conversation shown twice once", async () => {
    const h = setup();
    for (let i = 0; i < 3; i++) h.server.add("456");
    const a = probe(() => useConversation("456"));
    const b = probe(() => useConversation("456"));
    const app = await render(
      <StrictMode>
        <MessagingProvider client={h.client}>
          <a.Probe />
          <b.Probe />
        </MessagingProvider>
      </StrictMode>,
    );
    await h.open();
    assert.equal(h.sockets.all.length, 1, "StrictMode's second effect run must not reconnect");
    assert.equal(h.client.state, "connected");
    assert.deepEqual(seqs(a.get().messages), [1, 2, 3]);
    assert.strictEqual(a.get().messages, b.get().messages, "both components share one store");
    assert.equal(sent(h, "GET_HISTORY").filter((f) => f.sinceSeq === undefined).length, 1, "one page of history for both components");
    await app.unmount();
    assert.equal(h.client.conversation("456").opened, false, "the last component out closes the conversation handle");
  });

  it("throws a clear error when a hook is used outside a provider", () => {
    const p = probe(() => useConversation("456"));
    assert.throws(() => renderToString(<p.Probe />), /no <MessagingProvider client=\{…\}> above this component/);
  });
});

describe("useConversation", () => {
  it("shows history then live messages once each, a pending echo until its ACK, typing, unread and markRead", async () => {
    const h = setup();
    for (let i = 0; i < 3; i++) h.server.add("456");
    const p = probe(() => useConversation("456"));
    await mount(h, p);
    assert.equal(p.get().status, "loading");
    await h.open();
    assert.equal(p.get().status, "ready");
    assert.deepEqual(seqs(p.get().messages), [1, 2, 3]);

    const live = h.server.add("456");
    await step(() => {
      h.sockets.last.receive({ type: "NEW_MESSAGE", data: live });
      h.sockets.last.receive({ type: "NEW_MESSAGE", data: live });
    });
    assert.deepEqual(seqs(p.get().messages), [1, 2, 3, 4], "a message delivered twice is shown once");
    assert.equal(p.get().unread, 4);

    await step(() => h.sockets.last.receive({ type: "TYPING_START", conversationId: "456", userId: "bob", expiresAt: h.clock.now() + 5000 }));
    assert.deepEqual(p.get().typingUsers, ["bob"]);
    await step(() => h.clock.advance(6000));
    assert.deepEqual(p.get().typingUsers, [], "typing ends at its expiry without a TYPING_STOP");

    await step(() => p.get().markRead());
    assert.equal(p.get().unread, 0);
    assert.equal(p.get().lastReadSeq, 4);
    assert.deepEqual(
      sent(h, "MARK_READ").map((f) => f.seq),
      [4],
    );

    // The send waits for its ACK: the echo shows meanwhile, then the message in its place.
    h.server.silent.add("CHAT_MESSAGE");
    let settled = false;
    await step(() => {
      void p.get().send("hello bob").then(() => {
        settled = true;
      });
    });
    assert.deepEqual(
      p.get().pending.map((x) => [x.content.text, x.status]),
      [["hello bob", "sending"]],
    );
    const frame = sent(h, "CHAT_MESSAGE")[0];
    assert.ok(frame);
    h.server.silent.delete("CHAT_MESSAGE");
    await step(() => h.server.handle(frame, h.sockets.last));
    assert.ok(settled, "send resolves with its ACK");
    assert.deepEqual(p.get().pending, []);
    assert.deepEqual(seqs(p.get().messages), [1, 2, 3, 4, 5]);
    assert.equal(p.get().messages[4]?.senderId, "alice");
    assert.equal(p.get().unread, 0, "your own message is not unread");
  });

  it("catches up what it missed while disconnected, once and in order", async () => {
    const h = setup();
    for (let i = 0; i < 2; i++) h.server.add("456");
    const p = probe(() => useConversation("456"));
    await mount(h, p);
    await h.open();
    assert.deepEqual(seqs(p.get().messages), [1, 2]);
    await step(() => h.sockets.last.cut());
    for (let i = 0; i < 3; i++) h.server.add("456");
    await step(() => h.clock.advance(30_000));
    await h.open();
    assert.equal(h.sockets.all.length, 2);
    assert.deepEqual(seqs(p.get().messages), [1, 2, 3, 4, 5]);
    assert.deepEqual(
      h.sockets.last.sentOfType("GET_HISTORY").map((f) => f.sinceSeq),
      [2],
      "the new connection catches up from seq 2, and loads no page again",
    );
  });

  it("applies edits, deletes and reactions, keeps thread replies out of the list, and loads older pages", async () => {
    const h = setup({ pageSize: 2 });
    for (let i = 0; i < 3; i++) h.server.add("456");
    const p = probe(() => useConversation("456"));
    await mount(h, p);
    await h.open();
    assert.deepEqual(seqs(p.get().messages), [2, 3]);
    assert.equal(p.get().hasOlder, true);
    await step(() => p.get().loadOlder());
    assert.deepEqual(seqs(p.get().messages), [1, 2, 3]);
    assert.equal(p.get().hasOlder, false);

    const s = h.sockets.last;
    await step(() => {
      s.receive({ type: "MESSAGE_EDITED", data: message("456", 2, { edited: true, content: { text: "fixed", type: "text", attachments: [] } }) });
      s.receive({ type: "MESSAGE_DELETED", conversationId: "456", seq: 1, messageId: "m1", deletedBy: "bob" });
      s.receive({ type: "REACTIONS_CHANGED", conversationId: "456", seq: 3, messageId: "m3", reactions: { "👍": ["bob"] } });
      s.receive({ type: "THREAD_REPLY", data: message("456", 4, { parentSeq: 3 }), threadCount: 1 });
    });
    const [first, second, third] = p.get().messages;
    assert.equal(first?.deleted, true);
    assert.equal(first?.content.text, "");
    assert.equal(second?.content.text, "fixed");
    assert.equal(second?.edited, true);
    assert.deepEqual(third?.reactions, { "👍": ["bob"] });
    assert.equal(third?.threadCount, 1);
    assert.deepEqual(seqs(p.get().messages), [1, 2, 3], "the reply is in its thread, not the list");

    await step(() => p.get().toggleReaction(3, "👍"));
    assert.deepEqual(sent(h, "ADD_REACTION").map((f) => f.emoji), ["👍"]);
    assert.deepEqual(p.get().messages[2]?.reactions, { "👍": ["bob", "alice"] });
    await step(() => p.get().toggleReaction(3, "👍"));
    assert.deepEqual(sent(h, "REMOVE_REACTION").map((f) => f.emoji), ["👍"], "a second toggle takes it away");
    assert.deepEqual(p.get().messages[2]?.reactions, { "👍": ["bob"] });
  });

  it("ends, with the reason, when you are removed", async () => {
    const h = setup();
    h.server.add("456");
    const p = probe(() => useConversation("456"));
    await mount(h, p);
    await h.open();
    await step(() => h.sockets.last.receive({ type: "MEMBER_REMOVED", conversationId: "456", userId: "alice", removedBy: "olga" }));
    assert.equal(p.get().status, "ended");
    assert.equal(p.get().error?.code, "NOT_A_MEMBER");
  });

  it("reports a conversation it may not open as ended, with the server's code", async () => {
    const h = setup();
    h.server.refuse = (f) =>
      f.type === "GET_HISTORY" ? { type: "ERROR", code: "CONVERSATION_NOT_FOUND", message: "no conversation \"x\"", retryable: false } : undefined;
    const p = probe(() => useConversation("x"));
    await mount(h, p);
    await h.open();
    assert.equal(p.get().status, "ended");
    assert.equal(p.get().error?.code, "CONVERSATION_NOT_FOUND");
  });
});

describe("useConversations", () => {
  it("counts each new message once, resets when the conversation is read, and follows creations and removals", async () => {
    const h = setup();
    h.extra.push((f, s) => {
      if (f.type !== "LIST_CONVERSATIONS") return false;
      s.receive({
        type: "CONVERSATIONS",
        requestId: f.requestId,
        conversations: [summary("456", { lastSeq: 7, lastReadSeq: 5, unreadCount: 2 }), summary("ops", { lastActivity: "2026-12-01T01:00:00.000Z" })],
      });
      return true;
    });
    for (let i = 0; i < 7; i++) h.server.add("456");
    const list = probe(() => useConversations());
    await mount(h, list);
    await h.open();
    assert.deepEqual(
      list.get().conversations.map((c) => c.conversationId),
      ["ops", "456"],
    );
    const eight = h.server.add("456", { timestamp: "2026-12-01T02:00:00.000Z" });
    await step(() => {
      h.sockets.last.receive({ type: "NEW_MESSAGE", data: eight });
      h.sockets.last.receive({ type: "NEW_MESSAGE", data: eight });
      h.sockets.last.receive({ type: "NEW_MESSAGE", data: message("456", 7) });
    });
    const c456 = () => list.get().conversations.find((c) => c.conversationId === "456");
    assert.equal(c456()?.unreadCount, 3, "2 from the server, 1 new (a repeat and an already-counted seq ignored)");
    assert.equal(list.get().conversations[0]?.conversationId, "456", "the newest activity first");

    // Reading it in a conversation view clears the list's count.
    const view = probe(() => useConversation("456"));
    await render(
      <MessagingProvider client={h.client} connect={false}>
        <view.Probe />
      </MessagingProvider>,
    );
    assert.equal(view.get().lastReadSeq, 5, "the view starts from the list's read marker");
    assert.equal(view.get().unread, 3);
    await step(() => view.get().markRead());
    assert.equal(c456()?.unreadCount, 0);

    await step(() =>
      h.sockets.last.receive({
        type: "CONVERSATION_CREATED",
        conversation: { ...summary("launch", { lastActivity: "2026-12-01T03:00:00.000Z" }), lastReadSeq: undefined, unreadCount: undefined },
      }),
    );
    assert.equal(list.get().conversations[0]?.conversationId, "launch");
    await step(() => h.sockets.last.receive({ type: "MEMBER_REMOVED", conversationId: "ops", userId: "alice", removedBy: "olga" }));
    assert.deepEqual(
      list.get().conversations.map((c) => c.conversationId),
      ["launch", "456"],
    );
  });
});

describe("usePresence, useNotifications, useFileComments, useThread", () => {
  it("follows members' presence", async () => {
    const h = setup();
    h.extra.push((f, s) => {
      if (f.type !== "GET_PRESENCE") return false;
      s.receive({ type: "PRESENCE_LIST", requestId: f.requestId, conversationId: f.conversationId, members: [{ userId: "alice", status: "online" }, { userId: "bob", status: "offline" }] });
      return true;
    });
    const p = probe(() => usePresence("456"));
    await mount(h, p);
    await h.open();
    assert.equal(p.get().statusOf("bob"), "offline");
    await step(() => h.sockets.last.receive({ type: "PRESENCE", userId: "bob", status: "online" }));
    assert.equal(p.get().statusOf("bob"), "online");
    await step(() => h.sockets.last.receive({ type: "PRESENCE", userId: "mallory", status: "online" }));
    assert.equal(p.get().members.length, 2, "a non-member's presence is not added");
    await step(() => h.sockets.last.receive({ type: "MEMBER_REMOVED", conversationId: "456", userId: "bob", removedBy: "alice" }));
    assert.deepEqual(
      p.get().members.map((m) => m.userId),
      ["alice"],
    );
  });

  it("lists notifications, adds live ones once, and marks them all read", async () => {
    const h = setup();
    const notification = (id: string, read = false) => ({ notificationId: id, kind: "MENTION", text: `n ${id}`, data: {}, createdAt: "2026-12-01T00:00:00.000Z", read });
    h.extra.push((f, s) => {
      if (f.type !== "LIST_NOTIFICATIONS") return false;
      s.receive({ type: "NOTIFICATIONS", requestId: f.requestId, notifications: [notification("n1"), notification("n0", true)], unread: 1 });
      return true;
    });
    const p = probe(() => useNotifications());
    await mount(h, p);
    await h.open();
    assert.equal(p.get().unread, 1);
    await step(() => {
      h.sockets.last.receive({ type: "NOTIFICATION", notification: notification("n2") });
      h.sockets.last.receive({ type: "NOTIFICATION", notification: notification("n2") });
    });
    assert.deepEqual(
      p.get().notifications.map((n) => n.notificationId),
      ["n2", "n1", "n0"],
    );
    assert.equal(p.get().unread, 2);
    await step(() => p.get().markAllRead());
    assert.equal(p.get().unread, 0);
    assert.ok(p.get().notifications.every((n) => n.read));
    assert.deepEqual(sent(h, "MARK_NOTIFICATIONS_READ").map((f) => f.all), [true]);
  });

  it("lists a file's comments, adds live ones for that file once, in order, and posts", async () => {
    const h = setup();
    const comment = (id: string, fileId = "789") => ({ fileId, commentId: id, author: "bob", content: `c ${id}`, timestamp: "2026-12-01T00:00:00.000Z" });
    h.extra.push((f, s) => {
      if (f.type !== "LIST_FILE_COMMENTS") return false;
      s.receive({ type: "FILE_COMMENTS", requestId: f.requestId, fileId: f.fileId, comments: [comment("01a")] });
      return true;
    });
    const p = probe(() => useFileComments("789"));
    await mount(h, p);
    await h.open();
    await step(() => {
      h.sockets.last.receive({ type: "FILE_COMMENT", comment: comment("01c") });
      h.sockets.last.receive({ type: "FILE_COMMENT", comment: comment("01b") });
      h.sockets.last.receive({ type: "FILE_COMMENT", comment: comment("01c") });
      h.sockets.last.receive({ type: "FILE_COMMENT", comment: comment("01d", "other") });
    });
    assert.deepEqual(
      p.get().comments.map((c) => c.commentId),
      ["01a", "01b", "01c"],
    );
    // Your own comment: shown from its ACK (your connection is not sent its FILE_COMMENT), and once
    // even if another of your connections relays it.
    h.extra.push((f, s) => {
      if (f.type !== "FILE_COMMENT") return false;
      s.receive({ type: "ACK", requestId: f.requestId, action: "FILE_COMMENT", fileId: f.fileId, commentId: "01e", timestamp: "2026-12-01T00:00:05.000Z" });
      return true;
    });
    await step(() => p.get().post("Sign here", { position: { page: 2, x: 0.5, y: 0.5 } }));
    assert.deepEqual(sent(h, "FILE_COMMENT").map((f) => [f.fileId, f.content, (f.position as { page: number }).page]), [["789", "Sign here", 2]]);
    assert.deepEqual(p.get().comments.at(-1)?.commentId, "01e", "shown from the ACK alone");
    await step(() => h.sockets.last.receive({ type: "FILE_COMMENT", comment: { ...comment("01e"), author: "alice", content: "Sign here" } }));
    assert.deepEqual(
      p.get().comments.map((c) => [c.commentId, c.author, c.content]),
      [
        ["01a", "bob", "c 01a"],
        ["01b", "bob", "c 01b"],
        ["01c", "bob", "c 01c"],
        ["01e", "alice", "Sign here"],
      ],
    );
  });

  it("shows a thread's replies, live ones and your own once acknowledged", async () => {
    const h = setup();
    h.server.add("456");
    h.extra.push((f, s) => {
      if (f.type !== "GET_THREAD") return false;
      s.receive({ type: "THREAD", requestId: f.requestId, conversationId: "456", parent: message("456", 1), replies: [message("456", 2, { parentSeq: 1 })] });
      return true;
    });
    const p = probe(() => useThread("456", 1));
    await mount(h, p);
    await h.open();
    assert.equal(p.get().parent?.seq, 1);
    assert.deepEqual(seqs(p.get().replies), [2]);
    h.server.add("456", { parentSeq: 1 });
    h.server.add("456", { parentSeq: 1 }); // seqs 2 and 3 in the fake store: your reply is 4
    await step(() => h.sockets.last.receive({ type: "THREAD_REPLY", data: message("456", 3, { parentSeq: 1 }), threadCount: 2 }));
    await step(() => h.sockets.last.receive({ type: "THREAD_REPLY", data: message("456", 5, { parentSeq: 9 }), threadCount: 1 }));
    assert.deepEqual(seqs(p.get().replies), [2, 3], "a reply to another message is not this thread's");
    await step(() => p.get().reply("me too"));
    assert.equal(p.get().replies.at(-1)?.content.text, "me too");
    assert.equal(p.get().replies.at(-1)?.senderId, "alice");
    assert.equal(sent(h, "CHAT_MESSAGE")[0]?.parentSeq, 1);
  });
});
