// Checks server frames against the contract, docs/asyncapi.yaml.
//
//   node validate.mjs DIR         every line of every *.jsonl in DIR (what the local gateway
//                                 wrote with STACKPRO_FRAME_LOG_DIR during the test suite)
//   node validate.mjs --self-test the checker itself: known-good frames pass, broken ones fail
//
// Each frame is matched to its schema by `type` (a frame without one is API Gateway's own
// error answer); an unknown type, a missing field, a field not in the contract or a value of
// the wrong shape fails, and the run exits 1 listing the first failures.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import Ajv from "ajv";
import addFormats from "ajv-formats";
import YAML from "yaml";

const CONTRACT = fileURLToPath(new URL("../../docs/asyncapi.yaml", import.meta.url));

export function loadContract(path = CONTRACT) {
  const doc = YAML.parse(readFileSync(path, "utf8"), { merge: true });
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  ajv.addSchema({ $id: "asyncapi", components: { schemas: doc.components.schemas } });
  const byType = new Map();
  let gatewayError;
  for (const ref of doc.operations.receive.messages) {
    const name = ref.$ref.split("/").pop();
    const message = doc.components.messages[doc.channels.messaging.messages[name].$ref.split("/").pop()];
    const schemaName = message.payload.$ref.split("/").pop();
    const schema = doc.components.schemas[schemaName];
    const validate = ajv.getSchema(`asyncapi#/components/schemas/${schemaName}`);
    if (!validate) throw new Error(`the contract has no schema ${schemaName}`);
    const type = schema.properties?.type?.const;
    if (type) byType.set(type, validate);
    else gatewayError = validate;
  }
  return { byType, gatewayError };
}

/** Why `frame` (a parsed server frame) breaks the contract, or undefined when it does not. */
export function check(contract, frame) {
  if (frame === null || typeof frame !== "object" || Array.isArray(frame)) return "not a JSON object";
  const validate = typeof frame.type === "string" ? contract.byType.get(frame.type) : contract.gatewayError;
  if (!validate) return `type ${JSON.stringify(frame.type)} is not in the contract`;
  if (validate(frame)) {
    if (frame.type !== "BATCH") return undefined;
    // A BATCH's events are frames of their own: each checked against its type.
    for (const [i, event] of frame.events.entries()) {
      const broken = check(contract, event);
      if (broken) return `/events/${i} (${event.type}): ${broken}`;
    }
    return undefined;
  }
  return validate.errors.map((e) => `${e.instancePath || "/"} ${e.message}${e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : ""}`).join("; ");
}

function selfTest(contract) {
  const message = {
    conversationId: "456",
    messageId: "01a215baa47472849fa21f96c36d15e6",
    seq: 131,
    senderId: "alice",
    content: { text: "hi", type: "text", attachments: [] },
    timestamp: "2026-11-26T02:41:23.060Z",
    edited: false,
    reactions: {},
    threadCount: 0,
  };
  const good = [
    { type: "ACK", requestId: "r1", action: "CHAT_MESSAGE", conversationId: "456", messageId: message.messageId, seq: 131, timestamp: message.timestamp },
    { type: "NEW_MESSAGE", data: message },
    { type: "ERROR", code: "THROTTLED", message: "slow down", retryable: true, retryAfterMs: 6200 },
    { message: "Internal server error", connectionId: "abc=", requestId: "def=" },
    { type: "BATCH", events: [{ type: "NEW_MESSAGE", data: message }, { type: "PRESENCE", userId: "bob", status: "away" }] },
  ];
  const bad = [
    [{ type: "ACK", action: "PING", extra: 1 }, "a field the contract does not list"],
    [{ type: "NEW_MESSAGE", data: { ...message, seq: 0 } }, "seq 0"],
    [{ type: "NEW_MESSAGE", data: { ...message, content: { text: "x", type: "text" } } }, "attachments missing"],
    [{ type: "ERROR", code: "NOPE", message: "x", retryable: false }, "an unknown error code"],
    [{ type: "TELEPORT" }, "an unknown type"],
    [{ type: "HISTORY", conversationId: "456", order: "sideways", messages: [], members: [] }, "a wrong enum"],
    [{ type: "BATCH", events: [{ type: "NEW_MESSAGE", data: message }, { type: "PRESENCE", userId: "bob" }] }, "a broken event in a batch"],
    [{ type: "BATCH", events: [{ type: "NEW_MESSAGE", data: message }] }, "a batch of one"],
    [{ type: "BATCH", events: [{ type: "NEW_MESSAGE", data: message }, { type: "BATCH", events: [] }] }, "a nested batch"],
  ];
  for (const frame of good) {
    const why = check(contract, frame);
    if (why) throw new Error(`self-test: ${JSON.stringify(frame)} should pass: ${why}`);
  }
  for (const [frame, what] of bad) {
    if (!check(contract, frame)) throw new Error(`self-test: ${what} should fail: ${JSON.stringify(frame)}`);
  }
  console.log(`contract self-test: ${good.length} good frames pass, ${bad.length} broken ones fail (${contract.byType.size} server frame types)`);
}

function validateDir(contract, dir) {
  const counts = new Map();
  const failures = [];
  let files = 0;
  let frames = 0;
  for (const name of readdirSync(dir).filter((n) => n.endsWith(".jsonl")).sort()) {
    files++;
    for (const line of readFileSync(join(dir, name), "utf8").split("\n")) {
      if (!line) continue;
      frames++;
      let frame;
      try {
        frame = JSON.parse(line);
      } catch {
        failures.push(`${name}: not JSON: ${line.slice(0, 200)}`);
        continue;
      }
      const why = check(contract, frame);
      const key = typeof frame?.type === "string" ? frame.type : "(API Gateway error)";
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (why) failures.push(`${name}: ${key}: ${why}\n    ${line.slice(0, 400)}`);
    }
  }
  const unseen = [...contract.byType.keys()].filter((t) => !counts.has(t));
  console.log(`contract: ${frames} server frames from ${files} gateway runs checked against docs/asyncapi.yaml; ${failures.length} broke it`);
  console.log(
    [...counts.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([t, n]) => `  ${t} ${n}`)
      .join("\n"),
  );
  if (unseen.length) console.log(`  never sent by the suite: ${unseen.join(", ")}`);
  if (frames === 0) {
    console.error(`no frames in ${dir}: was the suite run with STACKPRO_FRAME_LOG_DIR set?`);
    process.exit(1);
  }
  if (failures.length) {
    console.error(failures.slice(0, 30).join("\n"));
    process.exit(1);
  }
}

const contract = loadContract();
if (process.argv[2] === "--self-test") selfTest(contract);
else if (process.argv[2]) {
  selfTest(contract);
  validateDir(contract, process.argv[2]);
} else {
  console.error("usage: node validate.mjs DIR | --self-test");
  process.exit(2);
}
