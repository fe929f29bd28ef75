// Scripted time, sockets and surroundings for the client's unit tests.
import type { Clock } from "../src/clock.js";
import type { Environment } from "../src/environment.js";
import type { Message } from "../src/protocol.js";
import type { SocketLike } from "../src/socket.js";

/** Lets every pending promise callback run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Time that moves only when told; timers run in due order, promises settle between them. */
export class FakeClock implements Clock {
  #now: number;
  #timers = new Map<number, { due: number; callback: () => void }>();
  #ids = 0;

  constructor(start = Date.UTC(2026, 11, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = ++this.#ids;
    this.#timers.set(id, { due: this.#now + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Timers pending, soonest first (for assertions). */
  get pending(): number[] {
    return [...this.#timers.values()].map((t) => t.due - this.#now).sort((a, b) => a - b);
  }

  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    await settle();
    for (;;) {
      let next: [number, { due: number; callback: () => void }] | undefined;
      for (const entry of this.#timers) if (entry[1].due <= until && (!next || entry[1].due < next[1].due)) next = entry;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].due;
      next[1].callback();
      await settle();
    }
    this.#now = until;
    await settle();
  }
}

export type Frame = Record<string, unknown> & { type: string };

/** A socket the test plays the server of. */
export class FakeSocket implements SocketLike {
  readyState = 0;
  readonly url: string;
  readonly sent: Frame[] = [];
  closedWith: { code: number | undefined; reason: string | undefined } | undefined;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string; wasClean?: boolean }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  /** Answers each frame the client sends (after it is recorded), as the server would. */
  server: ((frame: Frame, socket: FakeSocket) => void) | undefined;

  constructor(url: string) {
    this.url = url;
  }

  get token(): string | null {
    return new URL(this.url).searchParams.get("token");
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error("not open");
    const frame = JSON.parse(data) as Frame;
    this.sent.push(frame);
    this.server?.(frame, this);
  }

  close(code?: number, reason?: string): void {
    if (this.readyState >= 2) return;
    this.closedWith = { code, reason };
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code: code ?? 1005, reason: reason ?? "", wasClean: true }));
  }

  // ---- The server's side ----

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  receive(frame: object): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  /** The handshake failed (a refusal or an outage: a browser cannot tell them apart). */
  refuse(): void {
    this.readyState = 3;
    this.onerror?.({});
    this.onclose?.({ code: 1006, reason: "", wasClean: false });
  }

  /** The server (or the network) cut the connection. */
  cut(code = 1006, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: false });
  }

  sentOfType(type: string): Frame[] {
    return this.sent.filter((f) => f.type === type);
  }
}

export class FakeSockets {
  readonly all: FakeSocket[] = [];
  server: ((frame: Frame, socket: FakeSocket) => void) | undefined;

  readonly factory = (url: string): SocketLike => {
    const socket = new FakeSocket(url);
    socket.server = this.server;
    this.all.push(socket);
    return socket;
  };

  get last(): FakeSocket {
    const socket = this.all[this.all.length - 1];
    if (!socket) throw new Error("no socket opened");
    return socket;
  }
}

export class FakeEnvironment implements Environment {
  isVisible = true;
  #visibility = new Set<(visible: boolean) => void>();
  #online = new Set<() => void>();

  visible(): boolean {
    return this.isVisible;
  }
  onVisibilityChange(listener: (visible: boolean) => void): () => void {
    this.#visibility.add(listener);
    return () => this.#visibility.delete(listener);
  }
  onOnline(listener: () => void): () => void {
    this.#online.add(listener);
    return () => this.#online.delete(listener);
  }
  setVisible(visible: boolean): void {
    this.isVisible = visible;
    for (const l of this.#visibility) l(visible);
  }
  goOnline(): void {
    for (const l of this.#online) l();
  }
}

/** An unsigned JWT with these claims (the client reads, never verifies). */
export function token(claims: Record<string, unknown>): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims)}.c2ln`;
}

export function message(conversationId: string, seq: number, fields: Partial<Message> = {}): Message {
  return {
    conversationId,
    messageId: `m${seq}`,
    seq,
    senderId: "bob",
    content: { text: `message ${seq}`, type: "text", attachments: [] },
    timestamp: fields.timestamp ?? new Date(Date.UTC(2026, 11, 1) + seq * 1000).toISOString(),
    edited: false,
    reactions: {},
    threadCount: 0,
    ...fields,
  };
}

/**
 * A conversation store answering like the route function: GET_HISTORY (newest page, cursors,
 * `sinceSeq`), CHAT_MESSAGE (idempotent by clientMessageId), PING, SET_PRESENCE, MARK_READ.
 */
export class FakeServer {
  readonly messages = new Map<string, Message[]>();
  readonly byClientId = new Map<string, Message>();
  /** Frames to refuse: return an ERROR frame (without requestId) or undefined to answer normally. */
  refuse: ((frame: Frame) => Record<string, unknown> | undefined) | undefined;
  /** Answers held back (tests release them). */
  silent = new Set<string>();

  add(conversationId: string, fields: Partial<Message> = {}): Message {
    const list = this.messages.get(conversationId) ?? [];
    this.messages.set(conversationId, list);
    const m = message(conversationId, list.length + 1, fields);
    list.push(m);
    return m;
  }

  readonly handle = (frame: Frame, socket: FakeSocket): void => {
    const requestId = frame.requestId as string | undefined;
    if (this.silent.has(frame.type)) return;
    const refusal = this.refuse?.(frame);
    if (refusal) {
      socket.receive({ ...refusal, requestId });
      return;
    }
    const conversationId = frame.conversationId as string;
    switch (frame.type) {
      case "GET_HISTORY": {
        const list = this.messages.get(conversationId) ?? [];
        const limit = (frame.limit as number | undefined) ?? 50;
        const offset = frame.cursor ? Number(frame.cursor) : 0;
        if (frame.sinceSeq !== undefined) {
          const after = list.filter((m) => m.seq > (frame.sinceSeq as number));
          const page = after.slice(offset, offset + limit);
          const more = offset + limit < after.length;
          socket.receive({ type: "HISTORY", requestId, conversationId, order: "oldestFirst", messages: page, members: [], ...(more ? { nextCursor: String(offset + limit) } : {}) });
        } else {
          const newest = [...list].reverse();
          const page = newest.slice(offset, offset + limit);
          const more = offset + limit < newest.length;
          socket.receive({ type: "HISTORY", requestId, conversationId, order: "newestFirst", messages: page, members: [], ...(more ? { nextCursor: String(offset + limit) } : {}) });
        }
        break;
      }
      case "CHAT_MESSAGE": {
        const cmid = frame.clientMessageId as string;
        const known = this.byClientId.get(cmid);
        const sent = frame.content as { text: string; type?: "text" | "file" | "image"; attachments?: { fileId: string }[] };
        // Stored as the server stores it: the files named by what was registered.
        const attachments = (sent.attachments ?? []).map((a) => ({ fileId: a.fileId, name: `${a.fileId}.pdf`, size: 1, mimeType: "application/pdf" }));
        const m = known ?? this.add(conversationId, { senderId: "alice", clientMessageId: cmid, content: { text: sent.text, type: sent.type ?? "text", attachments } });
        this.byClientId.set(cmid, m);
        socket.receive({ type: "ACK", requestId, action: "CHAT_MESSAGE", conversationId, messageId: m.messageId, seq: m.seq, timestamp: m.timestamp, ...(known ? { duplicate: true } : {}) });
        break;
      }
      case "LIST_CONVERSATIONS":
        socket.receive({ type: "CONVERSATIONS", requestId, conversations: [] });
        break;
      case "LIST_FILES":
        socket.receive({ type: "FILES", requestId, files: [] });
        break;
      case "SEARCH":
        socket.receive({ type: "SEARCH_RESULTS", requestId, query: frame.query, results: [] });
        break;
      case "TYPING_START":
      case "TYPING_STOP":
        break;
      default:
        socket.receive({ type: "ACK", requestId, action: frame.type });
    }
  };
}

/** A promise's outcome, observed at once (so a rejection before the test looks is not "unhandled"). */
export function outcome<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}
