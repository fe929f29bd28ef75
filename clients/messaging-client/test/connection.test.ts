import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { backoffDelay } from "../src/backoff.js";
import { MessagingError } from "../src/errors.js";
import { outcome, settle, token } from "./fakes.js";
import { setup } from "./harness.js";

describe("backoff", () => {
  it("stays within full jitter's bounds: [0, min(max, initial * 2^n))", () => {
    const options = { initialDelayMs: 1_000, maxDelayMs: 30_000 };
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(30_000, 1_000 * 2 ** attempt);
      assert.equal(backoffDelay(attempt, options, () => 0), 0);
      assert.equal(backoffDelay(attempt, options, () => 0.999999), ceiling - 1);
      assert.equal(backoffDelay(attempt, options, () => 0.5), ceiling / 2);
    }
    assert.equal(backoffDelay(1_000, options, () => 0.999999), 29_999, "no overflow on a long outage");
  });

  it("spreads a crowd over the whole window instead of bringing it back in a wave", () => {
    const options = { initialDelayMs: 1_000, maxDelayMs: 30_000 };
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const delays = Array.from({ length: 10_000 }, () => backoffDelay(5, options, random));
    const buckets = new Array(10).fill(0) as number[];
    for (const d of delays) buckets[Math.floor(d / 3_000)]!++;
    for (const b of buckets) assert.ok(b > 800 && b < 1_200, `every tenth of the window gets about a tenth: ${buckets}`);
  });
});

describe("connection state machine", () => {
  it("connects with the token in the query string and reports each state", async () => {
    const h = setup();
    await h.connected();
    assert.equal(h.client.state, "connected");
    assert.deepEqual(
      h.states.map((s) => s.current),
      ["connecting", "connected"],
    );
    assert.equal(h.sockets.last.token, h.tokens[0]);
    assert.equal(h.client.userId, "alice");
  });

  it("reconnects with exponential backoff and full jitter, growing to the cap", async () => {
    const h = setup({ backoff: { initialDelayMs: 1_000, maxDelayMs: 8_000 } });
    await h.connected();
    h.rnd.value = 0.999;
    h.sockets.last.cut();
    await settle();
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const change = h.states[h.states.length - 1]!;
      assert.equal(change.current, "disconnected");
      assert.ok(change.reason instanceof MessagingError);
      waits.push(change.retryInMs!);
      const before = h.sockets.all.length;
      await h.clock.advance(change.retryInMs! - 1);
      assert.equal(h.sockets.all.length, before, "not before its time");
      await h.clock.advance(1);
      assert.equal(h.sockets.all.length, before + 1, "a new attempt when the wait is over");
      h.sockets.last.refuse(); // an outage: the token is valid and there is no HTTP API to ask
      await settle();
    }
    assert.deepEqual(waits, [999, 1_998, 3_996, 7_992, 7_992, 7_992]);
  });

  it("retries at once when the network comes back or the tab becomes visible", async () => {
    const h = setup({ backoff: { initialDelayMs: 10_000, maxDelayMs: 60_000 } });
    await h.connected();
    h.sockets.last.cut();
    await settle();
    assert.equal(h.client.state, "disconnected");
    const before = h.sockets.all.length;
    h.env.goOnline();
    await settle();
    assert.equal(h.sockets.all.length, before + 1);
    h.sockets.last.refuse();
    await settle();
    h.env.setVisible(false);
    await settle();
    assert.equal(h.sockets.all.length, before + 1, "hiding the tab does not retry");
    h.env.setVisible(true);
    await settle();
    assert.equal(h.sockets.all.length, before + 2);
    h.sockets.last.open();
    await settle();
    assert.equal(h.client.state, "connected");
  });

  it("connect() while a retry is scheduled or a socket is opening leaves one attempt, not two", async () => {
    const h = setup({ backoff: { initialDelayMs: 10_000, maxDelayMs: 10_000 } });
    await h.connected();
    h.sockets.last.cut();
    await settle();
    assert.equal(h.client.state, "disconnected");
    await h.client.connect();
    await settle();
    const opening = h.sockets.last;
    await h.client.connect();
    await settle();
    assert.equal(h.sockets.all.length, 2, "connecting already: no second socket");
    h.env.goOnline();
    await settle();
    assert.equal(h.sockets.all.length, 2);
    await h.clock.advance(60_000);
    assert.equal(h.sockets.all.length, 2, "the retry scheduled before was cancelled");
    opening.open();
    await settle();
    assert.equal(h.client.state, "connected");
  });

  it("a refused token is replaced once through getToken; refused again, the client fails with the reason and stops", async () => {
    const statuses: number[] = [];
    const h = setup({
      httpUrl: "https://http.example.test/",
      fetch: async (url, init) => {
        assert.equal(url, "https://http.example.test/conversations?limit=1");
        assert.match(init.headers.authorization!, /^Bearer /);
        statuses.push(401);
        return { status: 401 };
      },
    });
    await h.client.connect();
    await settle();
    h.sockets.last.refuse();
    await settle();
    await settle();
    assert.equal(h.tokens.length, 2, "one fresh token");
    assert.equal(h.sockets.all.length, 2, "and at once one more attempt with it");
    assert.equal(h.sockets.last.token, h.tokens[1]);
    const pending = outcome(h.client.request({ type: "LIST_CONVERSATIONS" }));
    h.sockets.last.refuse();
    await settle();
    await settle();
    assert.equal(h.client.state, "failed");
    const failed = h.states[h.states.length - 1]!;
    assert.equal(failed.reason?.code, "UNAUTHORIZED");
    assert.equal(((await pending).error as MessagingError).code, "UNAUTHORIZED");
    await h.clock.advance(10 * 60_000);
    assert.equal(h.sockets.all.length, 2, "no retry loop on a refusal");
    assert.equal(h.tokens.length, 2, "and no more tokens asked for");
    assert.equal(statuses.length, 2);
    // The application signs in again and connects: a new start.
    await h.client.connect();
    await settle();
    assert.equal(h.sockets.all.length, 3);
  });

  it("a failed handshake the HTTP API answers (not 401) is an outage, retried with backoff", async () => {
    const h = setup({ httpUrl: "https://http.example.test", fetch: async () => ({ status: 200 }) });
    await h.client.connect();
    await settle();
    h.sockets.last.refuse();
    await settle();
    await settle();
    assert.equal(h.client.state, "disconnected");
    assert.equal(h.tokens.length, 1);
  });

  it("without an HTTP API, a failed handshake with an expired token is a refusal and one with a valid token an outage", async () => {
    let expired = true;
    const h = setup({
      getToken: () => token({ sub: "alice", exp: expired ? 1 : 4_000_000_000 }),
    });
    await h.client.connect();
    await settle();
    // getToken gave an expired token: the client asks again before trusting it? It cannot know the
    // server's clock; it connects, and a refused handshake with an expired token asks for a new one.
    expired = false;
    h.sockets.last.refuse();
    await settle();
    await settle();
    assert.equal(h.sockets.all.length, 2, "a fresh token, at once");
    h.sockets.last.refuse();
    await settle();
    await settle();
    assert.equal(h.client.state, "disconnected", "a valid token refused: an outage, retried");
  });

  it("a token about to expire is replaced before connecting again", async () => {
    const h = setup({
      getToken: () => token({ sub: "alice", exp: Math.floor(h.clock.now() / 1000) + 60 }),
      backoff: { initialDelayMs: 90_000, maxDelayMs: 90_000 },
    });
    await h.connected();
    h.sockets.last.cut();
    await h.clock.advance(45_000);
    assert.equal(h.sockets.all.length, 2);
    // A 60-s token 45 s later has less than the 30-s margin left: the attempt fetched a new one.
    const second = h.sockets.all[1]!;
    assert.notEqual(second.token, h.sockets.all[0]!.token);
  });

  it("becomes suspended after suspendAfterMs: requests then fail at once, sends wait in the outbox", async () => {
    const h = setup({ suspendAfterMs: 60_000, backoff: { initialDelayMs: 1_000, maxDelayMs: 20_000 } });
    await h.connected();
    const conversation = h.client.conversation("456");
    await conversation.open();
    h.sockets.last.cut();
    await settle();
    const queued = outcome(h.client.request({ type: "LIST_CONVERSATIONS" }));
    for (let i = 0; i < 20 && h.client.state !== "suspended"; i++) {
      await h.clock.advance(20_000);
      if (h.sockets.last.readyState === 0) h.sockets.last.refuse();
      await settle();
    }
    assert.equal(h.client.state, "suspended");
    const refused = (await queued).error as MessagingError;
    assert.equal(refused.code, "DISCONNECTED");
    assert.ok(refused.retryable);
    await assert.rejects(h.client.request({ type: "LIST_FILES" }), (e: MessagingError) => e.code === "DISCONNECTED");
    let acked = false;
    const send = conversation.send("still here").then(() => (acked = true));
    await settle();
    assert.equal(h.client.outbox.length, 1);
    await h.clock.advance(20_000);
    h.sockets.last.open();
    await settle();
    await send;
    assert.ok(acked);
    assert.equal(h.client.state, "connected");
  });

  it("close() ends everything: outstanding requests fail with CLOSED, no timer is left", async () => {
    const h = setup();
    await h.connected();
    h.server.silent.add("SEARCH");
    const search = h.client.search("contract");
    await settle();
    h.client.close();
    await assert.rejects(search, (e: MessagingError) => e.code === "CLOSED");
    assert.equal(h.client.state, "closed");
    assert.equal(h.sockets.last.closedWith?.code, 1000);
    assert.deepEqual(h.clock.pending, []);
    await assert.rejects(h.client.ping(), (e: MessagingError) => e.code === "CLOSED");
  });

  it("close() with a conversation waiting on a missing seq stops its catch-ups: no timer keeps the process alive", async () => {
    const h = setup({ gapWaitMs: 1_000 });
    h.server.add("456");
    await h.connected();
    const conversation = h.client.conversation("456");
    await conversation.open();
    h.server.silent.add("GET_HISTORY");
    h.sockets.last.receive({ type: "NEW_MESSAGE", data: { ...h.server.add("456"), seq: 3 } });
    await h.clock.advance(1_000); // a catch-up is now waiting for its answer
    h.client.close();
    await h.clock.advance(60_000);
    assert.deepEqual(h.clock.pending, [], "no catch-up retried on a closed client");
  });

  it("the server forgetting the connection (UNKNOWN_CONNECTION) brings a new one, the request sent again", async () => {
    const h = setup();
    await h.connected();
    let first = true;
    h.server.refuse = (frame) => {
      if (frame.type === "LIST_CONVERSATIONS" && first) {
        first = false;
        return { type: "ERROR", code: "UNKNOWN_CONNECTION", message: "reconnect", retryable: false };
      }
      return undefined;
    };
    const list = h.client.listConversations();
    await settle();
    assert.equal(h.client.state, "disconnected");
    await h.clock.advance(1_000);
    h.sockets.last.open();
    assert.deepEqual((await list).conversations, []);
    assert.equal(h.sockets.last.sentOfType("LIST_CONVERSATIONS").length, 1, "sent again on the new connection");
  });
});

describe("requests", () => {
  it("are correlated by requestId, answered out of order, and time out", async () => {
    const h = setup({ requestTimeoutMs: 5_000 });
    await h.connected();
    h.server.silent.add("LIST_FILES").add("SEARCH").add("GET_FILE");
    const files = h.client.listFiles();
    const search = h.client.search("x");
    const file = outcome(h.client.getFile("789"));
    await settle();
    const [a, b] = [h.sockets.last.sentOfType("LIST_FILES")[0]!, h.sockets.last.sentOfType("SEARCH")[0]!];
    assert.notEqual(a.requestId, b.requestId);
    h.sockets.last.receive({ type: "SEARCH_RESULTS", requestId: b.requestId, query: "x", results: [] });
    h.sockets.last.receive({ type: "FILES", requestId: a.requestId, files: [] });
    assert.equal((await search).query, "x");
    assert.deepEqual((await files).files, []);
    await h.clock.advance(5_000);
    const timedOut = (await file).error as MessagingError;
    assert.equal(timedOut.code, "TIMEOUT");
    assert.ok(timedOut.retryable);
  });

  it("an ERROR answer rejects with its code, message and retryAfterMs", async () => {
    const h = setup();
    await h.connected();
    h.server.refuse = () => ({ type: "ERROR", code: "FORBIDDEN", message: "canCreateChannels", retryable: false });
    await assert.rejects(
      h.client.createConversation({ conversationId: "x", kind: "project" }),
      (e: MessagingError) => e.code === "FORBIDDEN" && e.message === "canCreateChannels" && !e.retryable,
    );
  });

  it("a frame over 32 KB is refused before it is sent", async () => {
    const h = setup();
    await h.connected();
    const sent = h.sockets.last.sent.length;
    await assert.rejects(
      h.client.commentOnFile({ fileId: "f", content: "é".repeat(17_000) }),
      (e: MessagingError) => e.code === "FRAME_TOO_LARGE" && /32 KB/.test(e.message),
    );
    await assert.rejects(h.client.conversation("456").send("x".repeat(33_000)), (e: MessagingError) => e.code === "FRAME_TOO_LARGE");
    assert.equal(h.sockets.last.sent.length, sent, "nothing sent");
    assert.equal(h.client.outbox.length, 0, "nothing queued");
  });

  it("reads lost with their connection are sent again on the next; writes fail DISCONNECTED", async () => {
    const h = setup();
    await h.connected();
    h.server.silent.add("LIST_CONVERSATIONS").add("CREATE_CONVERSATION");
    const read = h.client.listConversations();
    const write = outcome(h.client.createConversation({ conversationId: "p", kind: "project" }));
    await settle();
    h.sockets.last.cut();
    const lost = (await write).error as MessagingError;
    assert.equal(lost.code, "DISCONNECTED");
    assert.match(lost.message, /may or may not/);
    h.server.silent.clear();
    await h.clock.advance(1_000);
    h.sockets.last.open();
    assert.deepEqual((await read).conversations, []);
  });

  it("requests made before the connection opens wait for it", async () => {
    const h = setup();
    const ping = h.client.ping();
    await h.client.connect();
    await settle();
    assert.equal(h.sockets.last.sent.length, 0);
    h.sockets.last.open();
    assert.equal((await ping).action, "PING");
  });
});

describe("keepalive and presence", () => {
  it("a PING after keepaliveMs without a frame sent; an unanswered PING replaces the socket", async () => {
    const h = setup({ keepaliveMs: 240_000, requestTimeoutMs: 10_000 });
    await h.connected();
    await h.clock.advance(239_999);
    assert.equal(h.sockets.last.sentOfType("PING").length, 0);
    await h.clock.advance(1);
    assert.equal(h.sockets.last.sentOfType("PING").length, 1);
    // Sending anything pushes the next PING back.
    await h.clock.advance(200_000);
    await h.client.listFiles();
    await h.clock.advance(200_000);
    assert.equal(h.sockets.last.sentOfType("PING").length, 1);
    await h.clock.advance(40_000);
    assert.equal(h.sockets.last.sentOfType("PING").length, 2);
    // A dead socket: the PING is never answered.
    const dead = h.sockets.last;
    h.server.silent.add("PING");
    await h.clock.advance(240_000 + 10_000);
    assert.equal(dead.closedWith?.code, 4000);
    assert.equal(h.client.state === "disconnected" || h.client.state === "connecting", true);
    await h.clock.advance(1_000);
    assert.notEqual(h.sockets.last, dead, "a new socket");
  });

  it("a presence heartbeat while visible, away when hidden, online again when visible", async () => {
    const h = setup({ presenceHeartbeatMs: 120_000, keepaliveMs: 1_000_000 });
    await h.connected();
    const statuses = () => h.sockets.last.sentOfType("SET_PRESENCE").map((f) => f.status);
    assert.deepEqual(statuses(), ["online"]);
    await h.clock.advance(120_000);
    assert.deepEqual(statuses(), ["online", "online"]);
    h.env.setVisible(false);
    await settle();
    assert.deepEqual(statuses(), ["online", "online", "away"]);
    await h.clock.advance(600_000);
    assert.deepEqual(statuses(), ["online", "online", "away"], "no heartbeat while hidden");
    h.env.setVisible(true);
    await settle();
    assert.deepEqual(statuses(), ["online", "online", "away", "online"]);
  });
});
