// Two SDK clients exchange 500 messages on the real local gateway while the test's operator
// (tests/integration/sdk_e2e.rs, which starts this script) cuts one of them and restarts the
// gateway ("cuts"), or while the gateway's connection limit forces hand-offs ("handoff").
// Every message must reach both clients exactly once, in seq order, and every send resolve.
import assert from "node:assert/strict";
import { createInterface } from "node:readline";
import { after, it } from "node:test";

import { MessagingClient, type ConnectionState, type Message } from "../src/index.js";

const page = required("STACKPRO_GATEWAY_URL").replace(/\/$/, "");
const websocket = required("STACKPRO_WEBSOCKET_URL");
const scenario = required("STACKPRO_SCENARIO");
const PER_USER = 250;
const tenant = `sdk-${scenario}`;

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: tests/integration/sdk_e2e.rs runs this script`);
  return value;
}

// ---- The operator, over stdio ----

const operator = createInterface({ input: process.stdin });
const answers = operator[Symbol.asyncIterator]();
// Done (passed or not): stop reading the operator's answers so the process can exit.
after(() => {
  operator.close();
  process.stdin.destroy();
});
let controlling = Promise.resolve();
function control(request: Record<string, unknown>): Promise<Record<string, unknown>> {
  const turn = controlling.then(async () => {
    process.stdout.write(`@@control ${JSON.stringify(request)}\n`);
    const next = await answers.next();
    if (next.done) throw new Error("the operator went away");
    return JSON.parse(next.value) as Record<string, unknown>;
  });
  controlling = turn.then(
    () => undefined,
    () => undefined,
  );
  return turn;
}

async function token(user: string, role: string): Promise<string> {
  const response = await fetch(`${page}/dev/token?tenant=${tenant}&user=${user}&role=${role}&name=${user}`);
  assert.equal(response.status, 200, `a token for ${user}`);
  return ((await response.json()) as { token: string }).token;
}

interface Seen {
  client: MessagingClient;
  messages: Message[];
  states: ConnectionState[];
  handoffs: number;
  log: string[];
}

function client(user: string, role: string, options: { handoffAfterMs?: number } = {}): Seen {
  const c = new MessagingClient({
    url: websocket,
    httpUrl: page,
    getToken: () => token(user, role),
    backoff: { initialDelayMs: 200, maxDelayMs: 2_000 },
    requestTimeoutMs: 10_000,
    gapWaitMs: 1_000,
    pageSize: 100,
    presenceHeartbeatMs: false,
    ...options,
  });
  const seen: Seen = { client: c, messages: [], states: [], handoffs: 0, log: [] };
  c.on("state", (s) => {
    seen.states.push(s.current);
    seen.log.push(`${Date.now() % 1_000_000} ${s.current}${s.reason ? ` ${s.reason.message}` : ""}`);
  });
  c.on("handoff", (h) => {
    if (h.phase === "completed") seen.handoffs++;
  });
  return seen;
}

async function until(what: string, condition: () => boolean, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

it(`two clients exchange ${2 * PER_USER} messages (${scenario})`, { timeout: 150_000 }, async () => {
  const handoff = scenario === "handoff" ? { handoffAfterMs: 4_000 } : {};
  const alice = client("alice", "OWNER", handoff);
  const bob = client("bob", "USER", handoff);
  const conversationId = `e2e-${Date.now().toString(36)}`;
  await alice.client.connect();
  await until("alice connected", () => alice.client.state === "connected", 10_000);
  await alice.client.createConversation({ conversationId, kind: "project", title: "SDK e2e", members: ["bob"] });
  await bob.client.connect();
  await until("bob connected", () => bob.client.state === "connected", 10_000);
  for (const seen of [alice, bob]) {
    const conversation = seen.client.conversation(conversationId);
    conversation.on("message", (m) => seen.messages.push(m));
    conversation.on("gap", (g) => assert.fail(`a gap ${JSON.stringify(g)}: nothing may be missed`));
    await conversation.open();
  }

  // The operator's chaos, while the messages flow.
  let chaos = Promise.resolve();
  let sent = 0;
  const cuts = { asked: 0, done: 0 };
  if (scenario === "cuts") {
    chaos = (async () => {
      for (let i = 1; i <= 20; i++) {
        await until(`send ${i * 20}`, () => sent >= i * 20, 120_000);
        await until("bob connected again", () => bob.client.state === "connected", 60_000);
        cuts.asked++;
        const answer = await control({ op: "cut", tenant, user: "bob" });
        cuts.done += answer.cut as number;
        if (answer.cut !== 1) console.log(JSON.stringify({ cut: i, answer }));
        if (i === 10) await control({ op: "restart" });
      }
    })();
  }

  const started = Date.now();
  const progress = setInterval(() => {
    console.log(
      JSON.stringify({
        progress: Math.round((Date.now() - started) / 1000),
        sent,
        cuts,
        alice: { state: alice.client.state, got: alice.messages.length, outbox: alice.client.outbox.length },
        bob: { state: bob.client.state, got: bob.messages.length, outbox: bob.client.outbox.length },
      }),
    );
  }, 5_000);
  progress.unref();
  const send = async (seen: Seen, user: string) => {
    const conversation = seen.client.conversation(conversationId);
    const acks = [];
    for (let i = 0; i < PER_USER; i++) {
      acks.push(
        conversation.send(`${user} ${i}`).then((ack) => {
          sent++;
          return ack;
        }),
      );
      // A few at a time in the outbox, as a person typing fast would leave them.
      if (i % 5 === 4) await acks[acks.length - 1];
    }
    return Promise.all(acks);
  };
  const [aliceAcks, bobAcks] = await Promise.all([send(alice, "alice"), send(bob, "bob")]);
  await chaos;
  const sendSeconds = (Date.now() - started) / 1000;

  // Every send resolved with a seq; no two sends share one.
  const acked = [...aliceAcks, ...bobAcks].map((a) => a.seq!);
  assert.equal(acked.length, 2 * PER_USER);
  assert.equal(new Set(acked).size, 2 * PER_USER, "each send stored once");
  const newest = Math.max(...acked);

  for (const [name, seen] of [["alice", alice], ["bob", bob]] as const) {
    await until(`${name} has every message`, () => seen.messages.length > 0 && seen.messages[seen.messages.length - 1]!.seq >= newest, 60_000).catch((e: unknown) => {
      const have = new Set(seen.messages.map((m) => m.seq));
      const missing = [...Array(newest).keys()].map((i) => i + 1).filter((seq) => !have.has(seq));
      console.log(JSON.stringify({ name, lastSeq: seen.client.conversation(conversationId).lastSeq, newest, missing, log: seen.log.slice(-12) }));
      throw e;
    });
    const seqs = seen.messages.map((m) => m.seq);
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `${name}: seq ${seqs[i]} after ${seqs[i - 1]}: in order, once`);
    const texts = seen.messages.map((m) => m.content.text);
    assert.equal(new Set(texts).size, texts.length, `${name}: no message twice`);
    const expected = new Set([...Array(PER_USER).keys()].flatMap((i) => [`alice ${i}`, `bob ${i}`]));
    assert.deepEqual(new Set(texts), expected, `${name}: every message`);
  }
  if (scenario === "cuts") {
    assert.equal(cuts.asked, 20);
    assert.ok(cuts.done >= 20, `every cut closed a connection of bob's (${cuts.done})`);
    assert.ok(bob.states.filter((s) => s === "disconnected").length >= 20, "bob was disconnected at least 20 times");
  } else {
    assert.ok(alice.handoffs >= 2 && bob.handoffs >= 2, `hand-offs: alice ${alice.handoffs}, bob ${bob.handoffs}`);
    for (const seen of [alice, bob]) {
      assert.ok(!seen.states.includes("disconnected"), `a hand-off never disconnects: ${seen.states.join(",")}`);
    }
  }
  console.log(
    JSON.stringify({
      scenario,
      messages: 2 * PER_USER,
      sendSeconds,
      newestSeq: newest,
      voids: newest - 2 * PER_USER,
      cuts: cuts.done,
      disconnects: { alice: alice.states.filter((s) => s === "disconnected").length, bob: bob.states.filter((s) => s === "disconnected").length },
      handoffs: { alice: alice.handoffs, bob: bob.handoffs },
    }),
  );
  clearInterval(progress);
  alice.client.close();
  bob.client.close();
});

