// The demo web client (clients/demo: React on @stackpro/messaging-react and
// @stackpro/messaging-client) in headless Debian Chromium, driven by playwright-core: two
// users of one tenant chat live (typing, presence, messages rendered as text, a reaction, an
// edit, unread counts, search, a shared file and a comment on it); one loses the network and
// the SDK reconnects and catches up, each message once; alice posts a photo whose preview bob
// sees and opens (a non-member gets FILE_NOT_FOUND for it); the portal's backend posts a system
// message (a signed server API call) that both see as a notice; a user of another tenant sees
// nothing.
// Started by tests/integration/browser.rs with STACKPRO_GATEWAY_URL set.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";
import { sign } from "./sigv4.mjs";
import { crc32, deflateSync } from "node:zlib";

const base = process.env.STACKPRO_GATEWAY_URL;
const out = process.env.STACKPRO_TEST_OUTPUT ?? "target/test-output/browser";
const timeout = 10_000;
let browser;

before(async () => {
  assert.ok(base, "STACKPRO_GATEWAY_URL must name a running local gateway");
  mkdirSync(out, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => browser?.close());

/** A width × height RGB PNG (a gradient), encoded here: the photo alice posts. */
function png(width, height) {
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, "ascii");
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type, "ascii"), data])) >>> 0, 0);
    return Buffer.concat([head, data, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8 bits, RGB
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) row.set([x % 256, y % 256, 160], 1 + x * 3);
    rows.push(row);
  }
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", header),
    chunk("IDAT", deflateSync(Buffer.concat(rows))), chunk("IEND", Buffer.alloc(0))]);
}

/** One frame and its answer on a socket of `who`'s own, from inside `page` (a raw client). */
async function ask(page, who, frame) {
  return page.evaluate(async ({ who, frame }) => {
    const token = (await (await fetch(`/dev/token?${new URLSearchParams(who)}`)).json()).token;
    const { stage } = await (await fetch("/dev/config.json")).json();
    const ws = new WebSocket(`ws://${location.host}/${stage}?token=${token}`);
    return new Promise((resolve, reject) => {
      ws.onopen = () => ws.send(JSON.stringify({ ...frame, requestId: "raw-1" }));
      ws.onmessage = (event) => {
        const answer = JSON.parse(event.data);
        if (answer.requestId === "raw-1") {
          ws.close();
          resolve(answer);
        }
      };
      ws.onerror = () => reject(new Error("socket failed"));
    });
  }, { who, frame });
}

async function open(who) {
  const page = await (await browser.newContext({ viewport: { width: 1100, height: 700 } })).newPage();
  page.setDefaultTimeout(timeout);
  // Every WebSocket of the page goes through here, so the test can cut it as a network would.
  const sockets = [];
  let opened = 0;
  await page.routeWebSocket(/\/local\?token=/, (ws) => {
    sockets.push({ ws, server: ws.connectToServer() });
    opened++;
  });
  page.sockets = () => opened;
  page.cut = async () => {
    for (const { ws, server } of sockets.splice(0)) {
      await server.close({ code: 1001, reason: "network lost" });
      await ws.close({ code: 4000, reason: "network lost" });
    }
  };
  await page.goto(base);
  await page.getByTestId("tenant").fill(who.tenant);
  await page.getByTestId("user").fill(who.user);
  await page.getByTestId("role").selectOption(who.role);
  await page.getByTestId("connect").click();
  await page.getByTestId("status").filter({ hasText: "Connected" }).waitFor();
  return page;
}

test("two users of a tenant chat live and another tenant sees nothing", async () => {
  const alice = await open({ tenant: "acme", user: "alice", role: "OWNER" });
  const bob = await open({ tenant: "acme", user: "bob", role: "USER" });
  const mallory = await open({ tenant: "globex", user: "mallory", role: "OWNER" });

  // Alice opens a project conversation with Bob; it appears in Bob's list live.
  await alice.getByTestId("create-id").fill("launch");
  await alice.getByTestId("create-kind").selectOption("project");
  await alice.getByTestId("create-title").fill("Launch plan");
  await alice.getByTestId("create-members").fill("bob");
  await alice.getByTestId("create").click();
  await alice.getByTestId("chat-title").filter({ hasText: "Launch plan" }).waitFor();
  const conversation = bob.getByTestId("conversation").filter({ hasText: "Launch plan" });
  await conversation.waitFor();
  await conversation.click();
  await bob.getByTestId("chat-title").filter({ hasText: "client:acme:project:launch" }).waitFor();
  // Presence: Bob sees Alice online.
  await bob.locator('[data-testid="member"][data-status="online"]', { hasText: "alice" }).waitFor();

  // Typing appears for Bob while Alice types, and goes when her message arrives.
  await alice.getByTestId("composer").pressSequentially("Hel");
  await bob.getByTestId("typing").filter({ hasText: "alice is typing" }).waitFor();
  const hostile = "Hello <b>bob</b> & <img src=x onerror=alert(1)>";
  await alice.getByTestId("composer").fill(hostile);
  await alice.getByTestId("composer").press("Enter");
  await bob.getByTestId("message").filter({ hasText: hostile }).waitFor();
  assert.equal(await bob.locator('[data-testid="message"] b, [data-testid="message"] img').count(), 0,
    "user text must be rendered as text, never as HTML");
  await bob.waitForFunction(() => document.querySelector('[data-testid="typing"]').textContent === "");

  // Bob answers; Alice gets it live.
  await bob.getByTestId("composer").fill("Got it, thanks!");
  await bob.getByTestId("composer").press("Enter");
  await alice.getByTestId("message").filter({ hasText: "Got it, thanks!" }).waitFor();

  // The other tenant saw nothing, and cannot reach the conversation by its id.
  await mallory.waitForTimeout(500);
  assert.equal(await mallory.getByTestId("conversation").count(), 0);
  assert.equal(await mallory.getByTestId("message").count(), 0);
  await mallory.getByTestId("join-id").fill("launch");
  await mallory.getByTestId("join").click();
  await mallory.getByTestId("toast").filter({ hasText: "CONVERSATION_NOT_FOUND" }).waitFor();

  // A reaction from Bob appears on Alice's message, live.
  const hostileOnBob = bob.getByTestId("message").filter({ hasText: hostile });
  await hostileOnBob.getByTestId("react").click();
  const hostileOnAlice = alice.getByTestId("message").filter({ hasText: hostile });
  await hostileOnAlice.getByTestId("reaction").filter({ hasText: "👍 1" }).waitFor();

  // Alice edits her message; Bob sees the new text, marked edited, live.
  await hostileOnAlice.getByTestId("edit").click();
  await alice.getByTestId("composer-mode").filter({ hasText: "Editing" }).waitFor();
  await alice.getByTestId("composer").fill("Hello bob, the plan is attached");
  await alice.getByTestId("composer").press("Enter");
  const edited = bob.getByTestId("message").filter({ hasText: "Hello bob, the plan is attached" });
  await edited.getByTestId("edited").waitFor();
  await edited.getByTestId("reaction").filter({ hasText: "👍 1" }).waitFor();

  // A thread: Bob replies to Alice's message; Alice sees its reply count move, live, and opens it.
  await edited.getByTestId("reply").click();
  await bob.getByTestId("thread-parent").filter({ hasText: "Hello bob, the plan is attached" }).waitFor();
  await bob.getByTestId("thread-composer").fill("Looks good");
  await bob.getByTestId("thread-send").click();
  await bob.getByTestId("thread-reply").filter({ hasText: "bob: Looks good" }).waitFor();
  const threaded = alice.getByTestId("message").filter({ hasText: "Hello bob, the plan is attached" });
  await threaded.getByTestId("thread-count").filter({ hasText: "1 reply" }).click();
  await alice.getByTestId("thread-reply").filter({ hasText: "bob: Looks good" }).waitFor();
  assert.equal(await bob.getByTestId("message").filter({ hasText: "Looks good" }).count(), 0, "a reply stays in its thread");

  // A mention while Bob is connected: a live in-app notification on his bell.
  await alice.getByTestId("composer").fill("@bob please confirm the plan");
  await alice.getByTestId("composer").press("Enter");
  await bob.getByTestId("bell-count").filter({ hasText: "1" }).waitFor();
  await bob.getByTestId("bell").click();
  await bob.getByTestId("alert").filter({ hasText: "mentioned you: @bob please confirm the plan" }).waitFor();
  await bob.getByTestId("mark-all-read").click();
  await bob.getByTestId("bell-count").filter({ hasText: "0" }).waitFor();

  // Unread counts: a message in another conversation shows as a badge in Bob's list.
  await alice.getByTestId("create-id").fill("ops");
  await alice.getByTestId("create-members").fill("bob");
  await alice.getByTestId("create").click();
  await alice.getByTestId("chat-title").filter({ hasText: "client:acme:project:ops" }).waitFor();
  await alice.getByTestId("composer").fill("Ops sync at noon");
  await alice.getByTestId("composer").press("Enter");
  await bob.getByTestId("conversation").filter({ hasText: "ops" }).getByTestId("unread").filter({ hasText: "1" }).waitFor();

  // Bob's network drops while Alice writes in Launch plan: the SDK reconnects on its own and
  // catches up from the last seq Bob has; the message shows once, in its place.
  await alice.getByTestId("conversation").filter({ hasText: "Launch plan" }).click();
  await alice.getByTestId("chat-title").filter({ hasText: "client:acme:project:launch" }).waitFor();
  const socketsBefore = bob.sockets();
  await bob.cut();
  await alice.getByTestId("composer").fill("Sent while you were away");
  await alice.getByTestId("composer").press("Enter");
  await bob.getByTestId("message").filter({ hasText: "Sent while you were away" }).waitFor();
  await bob.getByTestId("status").filter({ hasText: "Connected" }).waitFor();
  assert.ok(bob.sockets() > socketsBefore, "the client opened a new connection");
  await bob.waitForTimeout(1000);
  assert.equal(await bob.getByTestId("message").filter({ hasText: "Sent while you were away" }).count(), 1, "delivered once");
  const seqs = await bob.getByTestId("message").evaluateAll((items) => items.map((li) => Number(li.dataset.seq)));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in seq order");

  // Alice deletes it; Bob sees the tombstone, live.
  await alice.getByTestId("message").filter({ hasText: "Sent while you were away" }).getByTestId("delete").click();
  await bob.locator('[data-testid="message"].deleted').filter({ hasText: "message deleted" }).waitFor();

  // Search finds Bob's own words, in his conversations.
  await bob.getByTestId("search").fill("thanks");
  await bob.getByTestId("search-go").click();
  await bob.getByTestId("search-result").filter({ hasText: "Got it, thanks!" }).waitFor();

  // A file: Alice uploads and shares it with Bob (comment); Bob's comment reaches Alice live.
  await alice.getByTestId("tab-files").click();
  await alice.getByTestId("file-input").setInputFiles({ name: "plan.pdf", mimeType: "application/pdf",
    buffer: Buffer.from("%PDF-1.7 launch plan") });
  await alice.getByTestId("file-upload").click();
  await alice.getByTestId("file-name").filter({ hasText: "plan.pdf" }).waitFor();
  // The bytes went straight to the bucket through the presigned PUT.
  await alice.getByTestId("toast").filter({ hasText: "Uploaded plan.pdf" }).waitFor();
  await alice.getByTestId("share-user").fill("bob");
  await alice.getByTestId("share-comment").check();
  await alice.getByTestId("share-go").click();
  await bob.getByTestId("tab-files").click();
  await bob.getByTestId("file").filter({ hasText: "plan.pdf" }).click();
  await bob.getByTestId("file-permissions").filter({ hasText: "comment" }).waitFor();
  await bob.getByTestId("file-comment-text").fill("Please sign <page 2>");
  await bob.getByTestId("file-comment-page").fill("2");
  await bob.getByTestId("file-comment-send").click();
  await alice.getByTestId("file-comment").filter({ hasText: "bob (page 2): Please sign <page 2>" }).waitFor();
  // Bob sees his own comment too (from its ACK: his connection is not sent its FILE_COMMENT), once.
  await bob.getByTestId("file-comment").filter({ hasText: "bob (page 2): Please sign <page 2>" }).waitFor();
  assert.equal(await bob.getByTestId("file-comment").count(), 1);
  assert.equal(await mallory.getByTestId("file").count(), 0, "the other tenant sees no file");

  // Alice posts the file into Launch plan, downloads allowed: Bob sees it in the conversation
  // and opens it through a fresh presigned URL (the message names the file, never a URL).
  await alice.getByTestId("post-file-download").check();
  await alice.getByTestId("post-file").click();
  const attachment = bob.getByTestId("message").getByTestId("attachment").filter({ hasText: "plan.pdf" });
  await attachment.waitFor();
  // The URL opens in a new tab, which the browser turns into a download: watch its request.
  const [request] = await Promise.all([
    bob.context().waitForEvent("request", { predicate: (r) => /tenants\/acme\/files\//.test(r.url()) }),
    attachment.getByTestId("attachment-open").click(),
  ]);
  assert.match(request.url(), /X-Amz-Signature=/, "a presigned URL of the tenant's object");
  assert.equal(await mallory.getByTestId("attachment").count(), 0);

  // An image: alice uploads a photo and posts it into Launch plan. image-preview makes its
  // preview when the upload lands; bob sees it (a fresh presigned URL of a 320-pixel JPEG) and
  // opens the original through another; carol, no member, gets FILE_NOT_FOUND for its id.
  await alice.getByTestId("file-input").setInputFiles({ name: "venue.png", mimeType: "image/png", buffer: png(640, 480) });
  await alice.getByTestId("file-upload").click();
  await alice.getByTestId("file-name").filter({ hasText: "venue.png" }).waitFor();
  await alice.getByTestId("post-file-download").check();
  await alice.getByTestId("post-file").click();
  const photo = bob.getByTestId("message").getByTestId("attachment").filter({ hasText: "venue.png" });
  const preview = photo.getByTestId("attachment-preview");
  await preview.waitFor();
  await bob.waitForFunction((img) => img.complete && img.naturalWidth > 0, await preview.elementHandle());
  assert.deepEqual(await preview.evaluate((img) => [img.naturalWidth, img.naturalHeight]), [320, 240], "the preview, not the photo");
  const previewSrc = await preview.getAttribute("src");
  assert.match(previewSrc, /\/previews\/acme\/[^/?]+\.jpg\?.*X-Amz-Signature=/);
  const photoId = /previews\/acme\/([^/?]+)\.jpg/.exec(previewSrc)[1];
  const [original] = await Promise.all([
    bob.context().waitForEvent("request", { predicate: (r) => r.url().includes(`tenants/acme/files/${photoId}?`) }),
    photo.getByTestId("attachment-open").click(),
  ]);
  assert.match(original.url(), /X-Amz-Signature=/, "a fresh presigned URL of the original");
  const carolAsks = await ask(bob, { tenant: "acme", user: "carol", role: "USER" },
    { type: "GET_DOWNLOAD_URL", fileId: photoId, variant: "preview" });
  assert.equal(carolAsks.code, "FILE_NOT_FOUND", JSON.stringify(carolAsks));
  const strangerAsks = await ask(mallory, { tenant: "globex", user: "mallory", role: "OWNER" },
    { type: "GET_DOWNLOAD_URL", fileId: photoId, variant: "preview" });
  assert.equal(strangerAsks.code, "FILE_NOT_FOUND");

  // The portal's backend posts a system message (SigV4-signed, as the local portal backend):
  // both see it live, set apart from people's messages; unsigned, the same call is refused.
  const url = `${new URL(base).origin}/service/tenants/acme/conversations/launch/messages`;
  const body = JSON.stringify({ text: "Invoice #42 was paid" });
  const headers = { "content-type": "application/json", "idempotency-key": `invoice-42-${Date.now()}` };
  const unsigned = await fetch(url, { method: "POST", headers, body });
  assert.equal(unsigned.status, 403);
  const signed = await fetch(url, {
    method: "POST",
    body,
    headers: {
      ...headers,
      ...sign({ method: "POST", url, headers, body, region: "us-east-1",
        accessKeyId: "LOCALPORTALBACKEND", secretAccessKey: "local-portal-backend-secret-not-for-aws" }),
    },
  });
  assert.equal(signed.status, 201, await signed.text());
  for (const page of [alice, bob]) {
    await page.locator('[data-testid="message"][data-kind="system"]').filter({ hasText: "Invoice #42 was paid" }).waitFor();
  }
  assert.equal(await mallory.getByTestId("message").filter({ hasText: "Invoice #42" }).count(), 0);

  await bob.screenshot({ path: `${out}/chat-bob.png` });
  await alice.screenshot({ path: `${out}/chat-alice.png` });
  await mallory.screenshot({ path: `${out}/chat-other-tenant.png` });
});
