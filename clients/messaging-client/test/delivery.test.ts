import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { MessageUpdate, PendingMessage } from "../src/conversation.js";
import { MessagingError } from "../src/errors.js";
import { MemoryOutboxStorage } from "../src/outbox.js";
import type { Message } from "../src/protocol.js";
import { Sequencer } from "../src/sequencer.js";
import { message, outcome, settle } from "./fakes.js";
import { setup, type Harness } from "./harness.js";

function collect(h: Harness, id = "456") {
  const conversation = h.client.conversation(id);
  const seqs: number[] = [];
  const gaps: { fromSeq: number; toSeq: number }[] = [];
  const updates: MessageUpdate[] = [];
  const pending: PendingMessage[] = [];
  conversation.on("message", (m) => seqs.push(m.seq));
  conversation.on("gap", (g) => gaps.push({ fromSeq: g.fromSeq, toSeq: g.toSeq }));
  conversation.on("update", (u) => updates.push(u));
  conversation.on("pending", (p) => pending.push(p));
  return { conversation, seqs, gaps, updates, pending };
}

describe("sequencer", () => {
  it("delivers every seq once and in order, whatever the arrival order and repeats", () => {
    const s = new Sequencer(0);
    const out: number[] = [];
    for (const seq of [2, 1, 1, 4, 3, 2, 6, 5, 5, 7]) out.push(...s.accept(message("c", seq)).map((m) => m.seq));
    assert.deepEqual(out, [1, 2, 3, 4, 5, 6, 7]);
    assert.equal(s.through, 7);
    assert.equal(s.waiting, false);
  });

  it("holds messages until its start is known, then drops what the start covers", () => {
    const s = new Sequencer();
    assert.deepEqual(s.accept(message("c", 11)), []);
    assert.deepEqual(s.accept(message("c", 9)), []);
    assert.deepEqual(
      s.start(9).map((m) => m.seq),
      [],
      "11 waits for 10",
    );
    assert.deepEqual(
      s.accept(message("c", 10)).map((m) => m.seq),
      [10, 11],
    );
  });

  it("lets voids fill their place without delivering them, and gives up a hole when told", () => {
    const s = new Sequencer(0);
    s.accept(message("c", 1));
    const out = s.accept(message("c", 2, { senderId: "stackpro.system", deleted: true }));
    assert.deepEqual(out, []);
    assert.equal(s.through, 2);
    s.accept(message("c", 6));
    const { gap, messages } = s.skipTo(6);
    assert.deepEqual(gap, { fromSeq: 3, toSeq: 5 });
    assert.deepEqual(
      messages.map((m) => m.seq),
      [6],
    );
  });

  it("refuses seqs that are not positive safe integers", () => {
    const s = new Sequencer(0);
    for (const seq of [0, -1, 1.5, Number.NaN, 2 ** 60]) assert.deepEqual(s.accept(message("c", seq, { timestamp: "2026-12-01T00:00:00Z" })), []);
    assert.equal(s.waiting, false);
  });
});

describe("resume", () => {
  it("after a reconnect each open conversation catches up from its last seq, once and in order", async () => {
    const h = setup({ pageSize: 3 });
    for (let i = 0; i < 3; i++) h.server.add("456");
    await h.connected();
    const c = collect(h);
    const opened = await c.conversation.open();
    assert.deepEqual(
      opened.messages.map((m) => m.seq),
      [1, 2, 3],
    );
    // Live: 4. Then the connection drops while 5..11 are sent.
    h.sockets.last.receive({ type: "NEW_MESSAGE", data: h.server.add("456") });
    h.sockets.last.cut();
    for (let i = 0; i < 7; i++) h.server.add("456");
    await h.clock.advance(1_000);
    const socket = h.sockets.last;
    socket.open();
    // A live copy of 9 on the new socket, before the catch-up's pages come.
    socket.receive({ type: "NEW_MESSAGE", data: h.server.messages.get("456")![8] });
    await settle();
    await settle();
    assert.deepEqual(c.seqs, [4, 5, 6, 7, 8, 9, 10, 11]);
    const asked = socket.sentOfType("GET_HISTORY");
    assert.equal(asked[0]!.sinceSeq, 4);
    assert.equal(asked.length, 3, "pages of 3 from seq 4: 5-7, 8-10, 11");
    assert.deepEqual(c.gaps, []);
  });

  it("a missing seq is fetched after gapWaitMs; one history no longer holds is a gap event", async () => {
    const h = setup({ gapWaitMs: 3_000 });
    for (let i = 0; i < 2; i++) h.server.add("456");
    await h.connected();
    const c = collect(h);
    await c.conversation.open();
    const m3 = h.server.add("456");
    const m4 = h.server.add("456");
    h.sockets.last.receive({ type: "NEW_MESSAGE", data: m4 });
    await h.clock.advance(2_999);
    assert.deepEqual(c.seqs, [], "4 waits for 3");
    assert.equal(h.sockets.last.sentOfType("GET_HISTORY").length, 1);
    await h.clock.advance(1);
    assert.deepEqual(c.seqs, [3, 4], "3 came from history");
    assert.equal(m3.seq, 3);
    // Retention removed 5..7: history begins at 8.
    const list = h.server.messages.get("456")!;
    for (let i = 0; i < 5; i++) h.server.add("456");
    h.server.messages.set("456", list.filter((m) => m.seq < 5 || m.seq > 7));
    h.sockets.last.receive({ type: "NEW_MESSAGE", data: list.find((m) => m.seq === 9) });
    await h.clock.advance(3_000);
    assert.deepEqual(c.gaps, [{ fromSeq: 5, toSeq: 7 }]);
    assert.deepEqual(c.seqs, [3, 4, 8, 9]);
  });

  it("a hole history does not fill (a number taken, its message not yet written) is asked again, then given up", async () => {
    const h = setup({ gapWaitMs: 1_000 });
    h.server.add("456");
    await h.connected();
    const c = collect(h);
    await c.conversation.open();
    const two = message("456", 2);
    const three = message("456", 3);
    h.sockets.last.receive({ type: "NEW_MESSAGE", data: three });
    await h.clock.advance(1_000);
    assert.deepEqual(c.seqs, []);
    await h.clock.advance(2_000);
    assert.deepEqual(c.seqs, [], "asked again after a longer wait");
    h.server.messages.get("456")!.push(two, three);
    await h.clock.advance(4_000);
    assert.deepEqual(c.seqs, [2, 3], "written meanwhile: delivered");
    h.sockets.last.receive({ type: "NEW_MESSAGE", data: message("456", 5) });
    await h.clock.advance(1_000 + 2_000 + 4_000);
    assert.deepEqual(c.gaps, [{ fromSeq: 4, toSeq: 4 }], "three catch-ups later");
    assert.deepEqual(c.seqs, [2, 3, 5]);
  });

  it("an edit, delete or reaction naming a seq not yet delivered is applied once it is", async () => {
    const h = setup({ gapWaitMs: 60_000 });
    h.server.add("456");
    await h.connected();
    const c = collect(h);
    await c.conversation.open();
    h.sockets.last.receive({ type: "REACTIONS_CHANGED", conversationId: "456", seq: 2, messageId: "m2", reactions: { "👍": ["bob"] } });
    assert.deepEqual(c.updates, []);
    h.sockets.last.receive({ type: "NEW_MESSAGE", data: message("456", 2) });
    assert.deepEqual(c.seqs, [2]);
    assert.deepEqual(c.updates, [{ kind: "reactions", seq: 2, messageId: "m2", reactions: { "👍": ["bob"] } }]);
    h.sockets.last.receive({ type: "MESSAGE_DELETED", conversationId: "456", seq: 1, messageId: "m1", deletedBy: "owner" });
    assert.equal((c.updates as MessageUpdate[])[1]?.kind, "deleted");
  });

  it("a BATCH frame's events are applied in their order, each as if it had come alone", async () => {
    const h = setup({ gapWaitMs: 60_000 });
    h.server.add("456");
    await h.connected();
    const c = collect(h);
    await c.conversation.open();
    const frames: string[] = [];
    h.client.on("frame", (f) => frames.push(f.type));
    h.sockets.last.receive({
      type: "BATCH",
      events: [
        { type: "NEW_MESSAGE", data: message("456", 2) },
        { type: "REACTIONS_CHANGED", conversationId: "456", seq: 2, messageId: "m2", reactions: { "👍": ["bob"] } },
        { type: "BATCH", events: [] },
        { type: "NEW_MESSAGE", data: message("456", 3) },
        "not a frame",
      ],
    });
    assert.deepEqual(c.seqs, [2, 3]);
    assert.deepEqual(c.updates.map((u) => u.kind), ["reactions"]);
    assert.deepEqual(frames, ["NEW_MESSAGE", "REACTIONS_CHANGED", "NEW_MESSAGE"], "a nested BATCH and a non-frame are dropped");
  });

  it("a conversation you are removed from ends, and its catch-up stops", async () => {
    const h = setup();
    await h.connected();
    const c = collect(h);
    await c.conversation.open();
    const ended: MessagingError[] = [];
    c.conversation.on("ended", (e) => ended.push(e.reason));
    h.sockets.last.receive({ type: "MEMBER_REMOVED", conversationId: "456", userId: "alice", removedBy: "owner" });
    assert.equal(ended[0]?.code, "NOT_A_MEMBER");
    h.sockets.last.receive({ type: "NEW_MESSAGE", data: message("456", 1) });
    assert.deepEqual(c.seqs, []);
  });
});

describe("outbox", () => {
  it("a send shows at once, resolves with its ACK, and becomes a message in seq order", async () => {
    const h = setup();
    h.server.add("456");
    await h.connected();
    const c = collect(h);
    await c.conversation.open();
    const ack = await c.conversation.send("hello");
    assert.equal(ack.seq, 2);
    assert.deepEqual(c.pending, [{ conversationId: "456", clientMessageId: "c1", content: { text: "hello", type: "text" }, status: "sending" }]);
    assert.deepEqual(c.seqs, [2]);
    const sent = h.sockets.last.sentOfType("CHAT_MESSAGE")[0]!;
    assert.equal(sent.clientMessageId, "c1");
    assert.equal(h.client.outbox.length, 0);
  });

  it("a file message goes with its file ids and arrives as stored, its files named, fetched after its ACK", async () => {
    const h = setup();
    await h.connected();
    const c = collect(h);
    const delivered: Message[] = [];
    c.conversation.on("message", (m) => delivered.push(m));
    await c.conversation.open();
    const ack = await c.conversation.send({ type: "file", text: "", attachments: [{ fileId: "f1", download: true }, { fileId: "f2" }] });
    await settle();
    assert.equal(ack.seq, 1);
    assert.deepEqual(h.sockets.last.sentOfType("CHAT_MESSAGE")[0]?.content, {
      text: "",
      type: "file",
      attachments: [{ fileId: "f1", download: true }, { fileId: "f2" }],
    });
    assert.deepEqual(c.pending[0]?.content.attachments, [{ fileId: "f1", download: true }, { fileId: "f2" }], "the echo shows the files at once");
    assert.deepEqual(
      delivered.map((m) => [m.seq, m.content.type, m.content.attachments?.map((a) => a.name)]),
      [[1, "file", ["f1.pdf", "f2.pdf"]]],
      "delivered once, as the server stored it (not made up from the ACK)",
    );
  });

  it("unacknowledged sends go again after a reconnect with the same clientMessageId; nothing is stored or shown twice", async () => {
    const h = setup();
    await h.connected();
    const c = collect(h);
    await c.conversation.open();
    // The server stores the message but the ACK is lost with the connection.
    const first = h.sockets.last;
    first.server = (frame, socket) => {
      if (frame.type === "CHAT_MESSAGE") {
        h.server.handle(frame, { ...socket, receive: () => {} } as never);
        return;
      }
      h.server.handle(frame, socket);
    };
    const send = c.conversation.send("once");
    await settle();
    first.cut();
    await h.clock.advance(1_000);
    h.sockets.last.open();
    const ack = await send;
    await settle();
    assert.equal(ack.duplicate, true);
    assert.equal(h.server.messages.get("456")!.length, 1, "stored once");
    assert.deepEqual(c.seqs, [1], "shown once (caught up and acknowledged: one message)");
    const resent = h.sockets.last.sentOfType("CHAT_MESSAGE");
    assert.equal(resent[0]!.clientMessageId, first.sentOfType("CHAT_MESSAGE")[0]!.clientMessageId);
  });

  it("one send in flight per conversation keeps your messages in the order you sent them", async () => {
    const h = setup();
    await h.connected();
    const c = collect(h);
    await c.conversation.open();
    h.server.silent.add("CHAT_MESSAGE");
    const sends = ["a", "b", "c"].map((t) => c.conversation.send(t));
    await settle();
    assert.equal(h.sockets.last.sentOfType("CHAT_MESSAGE").length, 1);
    h.server.silent.clear();
    for (let i = 0; i < 3; i++) {
      const frames = h.sockets.last.sentOfType("CHAT_MESSAGE");
      h.server.handle(frames[frames.length - 1]!, h.sockets.last);
      await settle();
    }
    const acks = await Promise.all(sends);
    assert.deepEqual(
      acks.map((a) => a.seq),
      [1, 2, 3],
    );
    assert.deepEqual(
      h.server.messages.get("456")!.map((m) => m.content.text),
      ["a", "b", "c"],
    );
  });

  it("THROTTLED waits retryAfterMs and goes again; a refusal fails the send, the next one proceeds", async () => {
    const h = setup();
    await h.connected();
    const c = collect(h);
    await c.conversation.open();
    let throttled = 1;
    h.server.refuse = (frame) => {
      if (frame.type !== "CHAT_MESSAGE") return undefined;
      if ((frame.content as { text: string }).text === "bad") return { type: "ERROR", code: "INVALID_FIELD", message: "content.text", retryable: false };
      if (throttled-- > 0) return { type: "ERROR", code: "THROTTLED", message: "slow down", retryable: true, retryAfterMs: 6_200 };
      return undefined;
    };
    const failed: string[] = [];
    h.client.on("sendFailed", (f) => failed.push(`${f.clientMessageId}:${f.error.code}`));
    const first = c.conversation.send("first");
    const bad = outcome(c.conversation.send("bad"));
    const after = c.conversation.send("after");
    await settle();
    await h.clock.advance(6_199);
    assert.equal(h.sockets.last.sentOfType("CHAT_MESSAGE").length, 1);
    await h.clock.advance(1);
    assert.equal((await first).seq, 1);
    assert.equal(((await bad).error as MessagingError).code, "INVALID_FIELD");
    assert.equal((await after).seq, 2);
    assert.deepEqual(failed, ["c2:INVALID_FIELD"]);
    assert.deepEqual(
      c.pending.filter((p) => p.clientMessageId === "c2").map((p) => p.status),
      ["sending", "failed"],
      "the local echo shows the failure",
    );
  });

  it("entries in a persistent outbox are sent when a client starts, and reported", async () => {
    const storage = new MemoryOutboxStorage();
    const h = setup({ outbox: storage });
    await storage.put({
      clientMessageId: "from-last-visit",
      conversationId: "456",
      createdAt: h.clock.now() - 60_000,
      frame: { type: "CHAT_MESSAGE", conversationId: "456", clientMessageId: "from-last-visit", content: { text: "typed before the reload" } },
    });
    await storage.put({
      clientMessageId: "ancient",
      conversationId: "456",
      createdAt: h.clock.now() - 24 * 3_600_000,
      frame: { type: "CHAT_MESSAGE", conversationId: "456", clientMessageId: "ancient", content: { text: "too old" } },
    });
    const sent: string[] = [];
    const failed: string[] = [];
    h.client.on("sent", (s) => sent.push(s.clientMessageId));
    h.client.on("sendFailed", (s) => failed.push(`${s.clientMessageId}:${s.error.code}`));
    await h.connected();
    await settle();
    assert.deepEqual(sent, ["from-last-visit"]);
    assert.deepEqual(failed, ["ancient:EXPIRED"]);
    assert.equal(storage.entries.size, 0);
    assert.equal(h.server.messages.get("456")!.length, 1);
  });
});

describe("hand-off", () => {
  it("before the 2-hour cut: a new socket opens, catches up, the old one closes, nothing doubled", async () => {
    const h = setup({ handoffAfterMs: 115 * 60_000, keepaliveMs: 10 ** 9 });
    h.server.add("456");
    await h.connected();
    const c = collect(h);
    await c.conversation.open();
    const phases: string[] = [];
    h.client.on("handoff", (e) => phases.push(e.phase));
    const frames: string[] = [];
    h.client.on("frame", (f) => frames.push(f.type));
    const old = h.sockets.last;
    await h.clock.advance(115 * 60_000);
    assert.equal(h.sockets.all.length, 2);
    const fresh = h.sockets.last;
    // Until the new one opens, the old one carries everything.
    const m2 = h.server.add("456");
    old.receive({ type: "NEW_MESSAGE", data: m2 });
    fresh.open();
    // Both now receive each broadcast.
    const m3 = h.server.add("456");
    old.receive({ type: "NEW_MESSAGE", data: m3 });
    fresh.receive({ type: "NEW_MESSAGE", data: m3 });
    old.receive({ type: "PRESENCE", userId: "bob", status: "away" });
    fresh.receive({ type: "PRESENCE", userId: "bob", status: "away" });
    await settle();
    await settle();
    assert.deepEqual(c.seqs, [2, 3]);
    assert.deepEqual(phases, ["started", "completed"]);
    assert.equal(old.closedWith?.code, 1000);
    assert.equal(fresh.closedWith, undefined);
    assert.equal(frames.filter((f) => f === "PRESENCE").length, 1, "a broadcast on both sockets is applied once");
    assert.equal(fresh.sentOfType("GET_HISTORY")[0]?.sinceSeq, 2, "caught up on the new socket from the last seq delivered");
    assert.equal(h.client.state, "connected");
    assert.ok(
      h.states.every((s) => s.current === "connecting" || s.current === "connected"),
      "no disconnected state on the way",
    );
    await c.conversation.send("after the hand-off");
    assert.equal(fresh.sentOfType("CHAT_MESSAGE").length, 1);
    assert.equal(old.sentOfType("CHAT_MESSAGE").length, 0);
  });

  it("the old socket stays until its outstanding answers come", async () => {
    const h = setup({ handoffAfterMs: 60_000, keepaliveMs: 10 ** 9, requestTimeoutMs: 10_000 });
    await h.connected();
    const old = h.sockets.last;
    h.server.silent.add("CREATE_CONVERSATION");
    await h.clock.advance(59_000);
    const create = h.client.createConversation({ conversationId: "p", kind: "project" });
    await h.clock.advance(1_000);
    h.sockets.last.open();
    await settle();
    assert.equal(old.closedWith, undefined, "an answer is still due on it");
    old.receive({ type: "ACK", requestId: old.sentOfType("CREATE_CONVERSATION")[0]!.requestId, action: "CREATE_CONVERSATION" });
    assert.equal((await create).action, "CREATE_CONVERSATION");
    await h.clock.advance(100);
    assert.equal((old as { closedWith?: { code?: number } }).closedWith?.code, 1000);
  });

  it("the old connection cut while the new one opens: the new one takes over", async () => {
    const h = setup({ handoffAfterMs: 60_000, keepaliveMs: 10 ** 9 });
    await h.connected();
    const old = h.sockets.last;
    await h.clock.advance(60_000);
    const fresh = h.sockets.last;
    old.cut(1001, "Going away");
    await settle();
    assert.equal(h.client.state, "connecting");
    fresh.open();
    await settle();
    assert.equal(h.client.state, "connected");
    assert.equal(h.sockets.all.length, 2);
  });
});

describe("typing", () => {
  it("keystroke() sends at most one TYPING_START per throttle and a TYPING_STOP after idle or on send", async () => {
    const h = setup({ typing: { throttleMs: 5_000, idleMs: 4_000 }, keepaliveMs: 10 ** 9 });
    await h.connected();
    const c = collect(h);
    await c.conversation.open();
    const typing = () => h.sockets.last.sent.filter((f) => f.type.startsWith("TYPING")).map((f) => f.type);
    for (let i = 0; i < 20; i++) {
      c.conversation.keystroke();
      await h.clock.advance(300); // 20 keystrokes over 6 s
    }
    assert.deepEqual(typing(), ["TYPING_START", "TYPING_START"], "one per 5 s");
    await h.clock.advance(3_999 - 300);
    assert.deepEqual(typing(), ["TYPING_START", "TYPING_START"]);
    await h.clock.advance(1);
    assert.deepEqual(typing(), ["TYPING_START", "TYPING_START", "TYPING_STOP"], "stop after 4 s idle");
    c.conversation.keystroke();
    await c.conversation.send("done");
    assert.deepEqual(typing().slice(3), ["TYPING_START", "TYPING_STOP"], "stop on send");
    await h.clock.advance(10_000);
    assert.equal(typing().length, 5, "no second stop");
    assert.ok(h.sockets.last.sent.filter((f) => f.type.startsWith("TYPING")).every((f) => f.requestId === undefined), "typing is never acknowledged");
  });

  it("shows who is typing until their TYPING_STOP, their message or expiresAt, never yourself", async () => {
    const h = setup();
    await h.connected();
    const c = collect(h);
    await c.conversation.open();
    const seen: string[][] = [];
    c.conversation.on("typing", (users) => seen.push(users));
    const now = h.clock.now();
    h.sockets.last.receive({ type: "TYPING_START", conversationId: "456", userId: "bob", expiresAt: now + 10_000 });
    h.sockets.last.receive({ type: "TYPING_START", conversationId: "456", userId: "alice", expiresAt: now + 10_000 });
    h.sockets.last.receive({ type: "TYPING_START", conversationId: "456", userId: "carol", expiresAt: now + 10_000 });
    assert.deepEqual(c.conversation.typingUsers, ["bob", "carol"]);
    h.sockets.last.receive({ type: "NEW_MESSAGE", data: message("456", 1, { senderId: "bob" }) });
    assert.deepEqual(c.conversation.typingUsers, ["carol"]);
    await h.clock.advance(10_000);
    assert.deepEqual(c.conversation.typingUsers, []);
    // A server clock far behind ours: shown for the indicator's life, not dropped at once.
    h.sockets.last.receive({ type: "TYPING_START", conversationId: "456", userId: "dave", expiresAt: now - 60_000 });
    assert.deepEqual(c.conversation.typingUsers, ["dave"]);
    await h.clock.advance(10_000);
    assert.deepEqual(c.conversation.typingUsers, []);
    assert.deepEqual(seen, [["bob"], ["bob", "carol"], ["carol"], [], ["dave"], []]);
  });
});

export type { Message };
