import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
import { systemClock, Timer, type Clock } from "./clock.js";
import { ConversationHandle, type ConversationHost, type PendingMessage } from "./conversation.js";
import { Emitter } from "./emitter.js";
import { defaultEnvironment, type Environment } from "./environment.js";
import { MessagingError } from "./errors.js";
import { MemoryOutboxStorage, OUTBOX_MAX_AGE_MS, type OutboxEntry, type OutboxStorage } from "./outbox.js";
import {
  frameBytes,
  IDEMPOTENT_REQUESTS,
  MAX_FRAME_BYTES,
  type Ack,
  type BatchFrame,
  type Answers,
  type ClientFrame,
  type Message,
  type OutgoingContent,
  type Notification,
  type PresenceStatus,
  type RequestOf,
  type RequestType,
  type ServerFrame,
  type ServerFrameOf,
  type ServerFrameType,
} from "./protocol.js";
import { defaultSocketFactory, OPEN, type SocketFactory, type SocketLike } from "./socket.js";
import { expiresWithin, readClaims, withToken, type TokenClaims } from "./token.js";
import { DEFAULT_TYPING, type TypingOptions } from "./typing.js";

/**
 * - `initialized`: created, `connect()` not called yet.
 * - `connecting`: a socket is opening.
 * - `connected`: frames flow.
 * - `disconnected`: the connection was lost; the next attempt is scheduled (`retryInMs`).
 * - `suspended`: disconnected for longer than `suspendAfterMs`: still retrying, but requests
 *   fail at once instead of waiting (sends stay in the outbox).
 * - `closed`: `close()` was called.
 * - `failed`: the server refused us (a token refused even fresh): no retry until `connect()`.
 */
export type ConnectionState = "initialized" | "connecting" | "connected" | "disconnected" | "suspended" | "closed" | "failed";

export interface StateChange {
  previous: ConnectionState;
  current: ConnectionState;
  /** Why the connection was lost or refused. */
  reason?: MessagingError;
  /** When `disconnected` or `suspended`: the wait before the next attempt. */
  retryInMs?: number;
}

export interface ClientOptions {
  /** The WebSocket API's URL, `wss://{api}.execute-api.{region}.amazonaws.com/{stage}` (the token is added). */
  url: string;
  /** A valid token (JWT). Called to connect, again when the current one expires or is refused. */
  getToken: () => string | Promise<string>;
  /** Opens a socket; the platform's WebSocket by default. */
  socket?: SocketFactory;
  /**
   * The HTTP API's URL. A browser cannot see why a WebSocket handshake failed; with this, a
   * failed handshake is checked with one `GET /conversations?limit=1`: a 401 there is a
   * refused token, anything else an outage.
   */
  httpUrl?: string;
  fetch?: (url: string, init: { headers: Record<string, string> }) => Promise<{ status: number }>;
  /** Where unacknowledged sends wait; memory by default. */
  outbox?: OutboxStorage;
  backoff?: Partial<BackoffOptions>;
  /** Disconnected this long becomes `suspended` (ms). Default 120,000. */
  suspendAfterMs?: number;
  /** A fresh connection replaces this one after this long (ms): before API Gateway's 2-hour cut. Default 1 h 55 min. */
  handoffAfterMs?: number;
  /** With nothing sent for this long, a PING (ms): inside API Gateway's 10-minute idle cut. Default 240,000. */
  keepaliveMs?: number;
  /** A request unanswered this long fails with TIMEOUT (ms). Default 15,000. */
  requestTimeoutMs?: number;
  /** SET_PRESENCE `online` this often while the page is visible (ms); `false`: no presence. Default 120,000. */
  presenceHeartbeatMs?: number | false;
  typing?: Partial<TypingOptions>;
  /** A missing `seq` this long after a later one arrived is fetched from history (ms). Default 3,000. */
  gapWaitMs?: number;
  /** Messages per history page. Default 50. */
  pageSize?: number;
  clock?: Clock;
  random?: () => number;
  environment?: Environment;
  /** New `clientMessageId`s; `crypto.randomUUID` by default. */
  newId?: () => string;
}

export interface ClientEvents {
  [event: string]: unknown;
  state: StateChange;
  /** Every frame the server sent, once (after the client has applied it). */
  frame: ServerFrame;
  presence: ServerFrameOf<"PRESENCE">;
  notification: Notification;
  /** A send acknowledged, including sends loaded from a persistent outbox. */
  sent: { conversationId: string; clientMessageId: string; ack: Ack };
  /** A send given up (refused, or too old to resend safely). */
  sendFailed: { conversationId: string; clientMessageId: string; error: MessagingError };
  /** A hand-off to a fresh connection. */
  handoff: { phase: "started" | "completed" | "failed"; reason?: MessagingError };
}

interface Link {
  socket: SocketLike;
  opened: boolean;
  /** Raw frames seen on this link while another one is also open: the same broadcast arrives on both. */
  seen: Set<string> | undefined;
}

interface Pending {
  requestId: string;
  frame: Record<string, unknown> & { type: string };
  json: string;
  resolve: (frame: never) => void;
  reject: (error: MessagingError) => void;
  timer: Timer;
  link: Link | undefined;
  idempotent: boolean;
  outbox: OutboxItem | undefined;
}

interface OutboxItem {
  entry: OutboxEntry;
  resolve: ((ack: Ack) => void) | undefined;
  reject: ((error: MessagingError) => void) | undefined;
  inFlight: boolean;
  notBefore: number;
  attempts: number;
}

const DEFAULT_HANDOFF_MS = (115 * 60) * 1000;
const TOKEN_MARGIN_MS = 30_000;
const DUPLICATE_WINDOW = 512;

/**
 * A StackPro Messaging client: one connection, kept open through outages, refusals, API
 * Gateway's idle and 2-hour cuts; typed requests; followed conversations delivered in order
 * once; sends through an outbox until acknowledged.
 */
export class MessagingClient extends Emitter<ClientEvents> {
  readonly clock: Clock;
  readonly typingOptions: TypingOptions;
  readonly gapWaitMs: number;
  readonly pageSize: number;
  #o: Required<Pick<ClientOptions, "suspendAfterMs" | "handoffAfterMs" | "keepaliveMs" | "requestTimeoutMs">> & {
    backoff: BackoffOptions;
    presenceHeartbeatMs: number | false;
  };
  #options: ClientOptions;
  #socket: SocketFactory;
  #random: () => number;
  #environment: Environment;
  #storage: OutboxStorage;
  #newId: () => string;

  #state: ConnectionState = "initialized";
  #attempt = 0;
  #disconnectedSince: number | undefined;
  #token: string | undefined;
  #claims: TokenClaims | undefined;
  #refreshedAfterRefusal = false;
  #current: Link | undefined;
  /** The connection being opened to replace `#current` (a hand-off). */
  #next: Link | undefined;
  /** The connection a hand-off replaced, until its last answers came. */
  #previous: Link | undefined;
  #generation = 0;

  #requests = 0;
  #pending = new Map<string, Pending>();
  #queued: Pending[] = [];
  #outbox = new Map<string, OutboxItem>();
  #outboxLoaded: Promise<void> | undefined;
  #conversations = new Map<string, ConversationHandle>();
  #notifications = new Set<string>();

  #retryTimer: Timer;
  #handoffTimer: Timer;
  #keepaliveTimer: Timer;
  #presenceTimer: Timer;
  #outboxTimer: Timer;
  #unsubscribe: (() => void)[] = [];

  constructor(options: ClientOptions) {
    super();
    this.#options = options;
    this.clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#socket = options.socket ?? defaultSocketFactory();
    this.#environment = options.environment ?? defaultEnvironment();
    this.#storage = options.outbox ?? new MemoryOutboxStorage();
    this.#newId = options.newId ?? (() => globalThis.crypto.randomUUID());
    this.typingOptions = { ...DEFAULT_TYPING, ...options.typing };
    this.gapWaitMs = options.gapWaitMs ?? 3_000;
    this.pageSize = options.pageSize ?? 50;
    this.#o = {
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      suspendAfterMs: options.suspendAfterMs ?? 120_000,
      handoffAfterMs: options.handoffAfterMs ?? DEFAULT_HANDOFF_MS,
      keepaliveMs: options.keepaliveMs ?? 240_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 15_000,
      presenceHeartbeatMs: options.presenceHeartbeatMs ?? 120_000,
    };
    this.#retryTimer = new Timer(this.clock);
    this.#handoffTimer = new Timer(this.clock);
    this.#keepaliveTimer = new Timer(this.clock);
    this.#presenceTimer = new Timer(this.clock);
    this.#outboxTimer = new Timer(this.clock);
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The user the token names (`sub`), once a token was fetched. */
  get userId(): string | undefined {
    return this.#claims?.sub;
  }

  /** Sends not yet acknowledged, oldest first. */
  get outbox(): OutboxEntry[] {
    return [...this.#outbox.values()].map((item) => item.entry);
  }

  /** Connects (again, after `close()` or `failed`). Resolves once the first attempt has started. */
  async connect(): Promise<void> {
    if (this.#state === "connecting" || this.#state === "connected") return;
    if (this.#unsubscribe.length === 0) {
      this.#unsubscribe.push(
        this.#environment.onOnline(() => this.#retryNow()),
        this.#environment.onVisibilityChange((visible) => this.#visibilityChanged(visible)),
      );
    }
    this.#outboxLoaded ??= this.#loadOutbox();
    this.#attempt = 0;
    this.#refreshedAfterRefusal = false;
    await this.#open();
  }

  /** Closes the connection for good: outstanding requests and sends fail with CLOSED (a persistent outbox keeps its entries). */
  close(): void {
    if (this.#state === "closed") return;
    this.#generation++;
    this.#stopTimers();
    for (const off of this.#unsubscribe.splice(0)) off();
    for (const link of [this.#current, this.#next, this.#previous]) if (link) this.#detach(link, 1000, "closed by the client");
    this.#current = this.#next = this.#previous = undefined;
    this.#failOutstanding(new MessagingError("CLOSED", "the client was closed"));
    for (const conversation of this.#conversations.values()) conversation.halt();
    this.#setState("closed");
  }

  /** The conversation `id`, followed once opened (`open()`), the same handle every time. */
  conversation(id: string): ConversationHandle {
    let handle = this.#conversations.get(id);
    if (!handle) {
      handle = new ConversationHandle(id, this.#host);
      this.#conversations.set(id, handle);
    }
    return handle;
  }

  /**
   * Sends a request and resolves with its answer (ACK or the data asked for), or rejects with a
   * {@link MessagingError}: the server's ERROR, FRAME_TOO_LARGE before sending, TIMEOUT,
   * DISCONNECTED (a write whose answer was lost with its connection), CLOSED. Reads lost with a
   * connection are sent again on the next one. Sent at once when connected, queued while
   * connecting or disconnected, refused while suspended.
   */
  request<T extends RequestType>(frame: RequestOf<T>): Promise<Answers[T]> {
    return this.#request(frame, undefined) as Promise<Answers[T]>;
  }

  /** Typed shorthands for the frames no conversation handle covers. */
  listConversations(options: { limit?: number; cursor?: string } = {}) {
    return this.request({ type: "LIST_CONVERSATIONS", ...options });
  }
  createConversation(frame: Omit<RequestOf<"CREATE_CONVERSATION">, "type">) {
    return this.request({ type: "CREATE_CONVERSATION", ...frame });
  }
  joinConversation(conversationId: string) {
    return this.request({ type: "JOIN_CONVERSATION", conversationId });
  }
  addMembers(conversationId: string, members: string[]) {
    return this.request({ type: "ADD_MEMBERS", conversationId, members });
  }
  removeMember(conversationId: string, userId: string) {
    return this.request({ type: "REMOVE_MEMBER", conversationId, userId });
  }
  search(query: string, options: { limit?: number; cursor?: string } = {}) {
    return this.request({ type: "SEARCH", query, ...options });
  }
  getPresence(conversationId: string, options: { limit?: number; cursor?: string } = {}) {
    return this.request({ type: "GET_PRESENCE", conversationId, ...options });
  }
  setPresence(status: "online" | "away") {
    return this.request({ type: "SET_PRESENCE", status });
  }
  listNotifications(options: { limit?: number; cursor?: string } = {}) {
    return this.request({ type: "LIST_NOTIFICATIONS", ...options });
  }
  markNotificationsRead(which: { notificationIds: string[] } | { all: true }) {
    return this.request({ type: "MARK_NOTIFICATIONS_READ", ...which });
  }
  getPreferences() {
    return this.request({ type: "GET_PREFERENCES" });
  }
  setPreferences(preferences: RequestOf<"SET_PREFERENCES">["preferences"]) {
    return this.request({ type: "SET_PREFERENCES", preferences });
  }
  ping() {
    return this.request({ type: "PING" });
  }
  registerFile(file: Omit<RequestOf<"REGISTER_FILE">, "type">) {
    return this.request({ type: "REGISTER_FILE", ...file });
  }
  shareFile(fileId: string, userId: string, permissions: RequestOf<"SHARE_FILE">["permissions"]) {
    return this.request({ type: "SHARE_FILE", fileId, userId, permissions });
  }
  revokeFileShare(fileId: string, userId: string) {
    return this.request({ type: "REVOKE_FILE_SHARE", fileId, userId });
  }
  listFiles(options: { limit?: number; cursor?: string } = {}) {
    return this.request({ type: "LIST_FILES", ...options });
  }
  getFile(fileId: string) {
    return this.request({ type: "GET_FILE", fileId });
  }
  commentOnFile(comment: Omit<RequestOf<"FILE_COMMENT">, "type">) {
    return this.request({ type: "FILE_COMMENT", ...comment });
  }
  listFileComments(fileId: string, options: { limit?: number; cursor?: string } = {}) {
    return this.request({ type: "LIST_FILE_COMMENTS", fileId, ...options });
  }
  /**
   * A presigned GET of the file (needs `download`), or of an image's preview
   * (`variant: "preview"`, a JPEG of at most 320 px a side: needs `read`). A preview not made
   * yet, refused, or of a file that gets none fails with PREVIEW_NOT_AVAILABLE.
   */
  getDownloadUrl(fileId: string, options: { variant?: "original" | "preview" } = {}) {
    return this.request({ type: "GET_DOWNLOAD_URL", fileId, ...options });
  }
  getUploadUrl(fileId: string, size: number) {
    return this.request({ type: "GET_UPLOAD_URL", fileId, size });
  }

  /** Listens to one type of server frame. */
  onFrame<T extends ServerFrameType>(type: T, listener: (frame: ServerFrameOf<T>) => void): () => void {
    return this.on("frame", (frame) => {
      if (frame.type === type) listener(frame as ServerFrameOf<T>);
    });
  }

  // ---- The host conversations use -------------------------------------------------------------

  #host: ConversationHost = ((client: MessagingClient): ConversationHost => ({
    get clock() {
      return client.clock;
    },
    get userId() {
      return client.userId;
    },
    get typingOptions() {
      return client.typingOptions;
    },
    get gapWaitMs() {
      return client.gapWaitMs;
    },
    get pageSize() {
      return client.pageSize;
    },
    request: (frame) => client.request(frame),
    sendTyping: (conversationId, type) => client.#sendTyping(conversationId, type),
    sendMessage: (conversationId, content, parentSeq) => client.#sendMessage(conversationId, content, parentSeq),
    forget: (conversationId) => {
      client.#conversations.delete(conversationId);
    },
  }))(this);

  // ---- Connecting ---------------------------------------------------------------------------------

  async #open(): Promise<void> {
    const generation = ++this.#generation;
    // One attempt at a time: a scheduled retry, or a socket still opening, gives way to this one.
    this.#retryTimer.stop();
    const opening = this.#current;
    if (opening && !opening.opened) {
      this.#detach(opening, 1000, "replaced by a new attempt");
      this.#current = undefined;
    }
    this.#setState("connecting");
    let token: string;
    try {
      token = await this.#freshToken(false);
    } catch (error) {
      if (generation !== this.#generation) return;
      this.#lost(new MessagingError("UNAUTHORIZED", `getToken failed: ${describe(error)}`, { retryable: true }));
      return;
    }
    if (generation !== this.#generation) return;
    this.#current = this.#link(token);
  }

  async #freshToken(force: boolean): Promise<string> {
    if (force || this.#token === undefined || expiresWithin(this.#claims, this.clock.now(), TOKEN_MARGIN_MS)) {
      const token = await this.#options.getToken();
      this.#token = token;
      this.#claims = readClaims(token);
    }
    return this.#token as string;
  }

  #link(token: string): Link {
    const socket = this.#socket(withToken(this.#options.url, token));
    const link: Link = { socket, opened: false, seen: undefined };
    socket.onopen = () => this.#opened(link);
    socket.onmessage = (event) => this.#data(link, event.data);
    socket.onclose = (event) => this.#closed(link, event.code, event.reason);
    socket.onerror = () => {};
    return link;
  }

  #opened(link: Link): void {
    link.opened = true;
    if (link === this.#next) {
      this.#handoffOpened(link);
      return;
    }
    if (link !== this.#current) return;
    this.#attempt = 0;
    this.#disconnectedSince = undefined;
    this.#refreshedAfterRefusal = false;
    this.#setState("connected");
    this.#handoffTimer.start(this.#o.handoffAfterMs, () => this.#startHandoff());
    this.#touch();
    this.#startPresence();
    this.#flushQueued();
    void this.#afterConnect();
  }

  async #afterConnect(): Promise<void> {
    await this.#outboxLoaded;
    this.#pumpOutbox();
    await this.#resumeAll();
  }

  #resumeAll(): Promise<unknown> {
    return Promise.allSettled([...this.#conversations.values()].map((c) => c.catchUp()));
  }

  #closed(link: Link, code: number, reason: string): void {
    link.socket.onopen = link.socket.onmessage = link.socket.onclose = null;
    if (link === this.#previous) {
      this.#previous = undefined;
      if (this.#current) this.#current.seen = undefined;
      this.#linkLost(link);
      return;
    }
    if (link === this.#next) {
      this.#next = undefined;
      this.emit("handoff", { phase: "failed", reason: new MessagingError("DISCONNECTED", `the new connection closed (${code})`) });
      this.#handoffTimer.start(backoffDelay(2, this.#o.backoff, this.#random) + 1_000, () => this.#startHandoff());
      return;
    }
    if (link !== this.#current) return;
    this.#current = undefined;
    this.#linkLost(link);
    for (const conversation of this.#conversations.values()) conversation.connectionLost();
    if (this.#state === "closed" || this.#state === "failed") return;
    if (this.#next) {
      // Cut during a hand-off: the new connection, still opening, takes over.
      this.#current = this.#next;
      this.#next = undefined;
      this.#setState("connecting");
      return;
    }
    const why = new MessagingError("DISCONNECTED", `connection closed (${code}${reason ? `: ${reason}` : ""})`, { retryable: true });
    if (!link.opened) void this.#refusedOrLost(why);
    else this.#lost(why);
  }

  /** A handshake that failed: a refused token (ask for a fresh one, once), or an outage. */
  async #refusedOrLost(why: MessagingError): Promise<void> {
    const generation = this.#generation;
    const refused = await this.#wasRefused();
    if (generation !== this.#generation || this.#state === "closed") return;
    if (!refused) {
      this.#lost(why);
      return;
    }
    if (this.#refreshedAfterRefusal) {
      this.#fail(new MessagingError("UNAUTHORIZED", "the server refused the token, a fresh one too: sign in again"));
      return;
    }
    this.#refreshedAfterRefusal = true;
    try {
      await this.#freshToken(true);
    } catch (error) {
      this.#fail(new MessagingError("UNAUTHORIZED", `the server refused the token and getToken failed: ${describe(error)}`));
      return;
    }
    if (generation !== this.#generation) return;
    await this.#open();
  }

  async #wasRefused(): Promise<boolean> {
    const { httpUrl } = this.#options;
    const fetcher = this.#options.fetch ?? (globalThis as { fetch?: ClientOptions["fetch"] }).fetch;
    if (httpUrl && fetcher && this.#token) {
      try {
        const response = await fetcher(`${httpUrl.replace(/\/$/, "")}/conversations?limit=1`, {
          headers: { authorization: `Bearer ${this.#token}` },
        });
        return response.status === 401;
      } catch {
        return false; // no network: an outage
      }
    }
    return expiresWithin(this.#claims, this.clock.now(), 0);
  }

  #lost(reason: MessagingError): void {
    this.#stopConnectionTimers();
    this.#disconnectedSince ??= this.clock.now();
    const suspended = this.clock.now() - this.#disconnectedSince >= this.#o.suspendAfterMs;
    const retryInMs = backoffDelay(this.#attempt++, this.#o.backoff, this.#random);
    if (suspended) {
      const queued = this.#queued.splice(0);
      for (const p of queued) p.reject(new MessagingError("DISCONNECTED", "not connected (suspended)", { retryable: true, requestId: p.requestId }));
    }
    this.#retryTimer.start(retryInMs, () => void this.#open());
    this.#setState(suspended ? "suspended" : "disconnected", reason, retryInMs);
  }

  #fail(reason: MessagingError): void {
    this.#generation++;
    this.#stopTimers();
    for (const conversation of this.#conversations.values()) conversation.halt();
    this.#failOutstanding(reason);
    this.#setState("failed", reason);
  }

  #retryNow(): void {
    if (this.#state === "disconnected" || this.#state === "suspended") {
      this.#retryTimer.stop();
      void this.#open();
    }
  }

  #visibilityChanged(visible: boolean): void {
    if (visible) this.#retryNow();
    if (this.#state !== "connected") return;
    if (this.#o.presenceHeartbeatMs === false) return;
    if (visible) this.#startPresence();
    else {
      this.#presenceTimer.stop();
      this.request({ type: "SET_PRESENCE", status: "away" }).catch(() => {});
    }
  }

  #startPresence(): void {
    const every = this.#o.presenceHeartbeatMs;
    if (every === false || !this.#environment.visible()) return;
    const beat = () => {
      this.request({ type: "SET_PRESENCE", status: "online" }).catch(() => {});
      this.#presenceTimer.start(every, beat);
    };
    beat();
  }

  /** Something was sent: the keepalive waits its full period again. */
  #touch(): void {
    this.#keepaliveTimer.start(this.#o.keepaliveMs, () => {
      const link = this.#current;
      this.request({ type: "PING" }).catch((error: MessagingError) => {
        // No answer on a socket that looks open: it is dead; replace it.
        if (error.code === "TIMEOUT" && link && link === this.#current) this.#drop(link, "keepalive unanswered");
      });
    });
  }

  /** Gives up on a link whose socket may never report its own death. */
  #drop(link: Link, reason: string): void {
    this.#detach(link, 4000, reason);
    this.#closed(link, 4000, reason);
  }

  #detach(link: Link, code: number, reason: string): void {
    const socket = link.socket;
    socket.onopen = socket.onmessage = socket.onclose = null;
    try {
      socket.close(code, reason);
    } catch {
      // already closing
    }
  }

  // ---- Hand-off -----------------------------------------------------------------------------------

  async #startHandoff(): Promise<void> {
    if (this.#state !== "connected" || this.#next) return;
    const generation = this.#generation;
    this.emit("handoff", { phase: "started" });
    let token: string;
    try {
      token = await this.#freshToken(false);
    } catch (error) {
      this.emit("handoff", { phase: "failed", reason: new MessagingError("UNAUTHORIZED", describe(error)) });
      this.#handoffTimer.start(60_000, () => void this.#startHandoff());
      return;
    }
    if (generation !== this.#generation || this.#state !== "connected" || this.#next) return;
    this.#next = this.#link(token);
  }

  #handoffOpened(link: Link): void {
    const old = this.#current;
    this.#next = undefined;
    this.#current = link;
    this.#handoffTimer.start(this.#o.handoffAfterMs, () => void this.#startHandoff());
    this.#touch();
    if (old) {
      // Both sockets now receive every broadcast: drop what the other already delivered.
      this.#previous = old;
      old.seen = new Set();
      link.seen = new Set();
    }
    this.#flushQueued();
    this.#pumpOutbox();
    void this.#resumeAll().then(() => this.#retire(old, link));
  }

  /** Closes the old connection once its outstanding answers came (or the request timeout passed). */
  #retire(old: Link | undefined, current: Link): void {
    const deadline = this.clock.now() + this.#o.requestTimeoutMs;
    const wait = new Timer(this.clock);
    const check = () => {
      if (old && old === this.#previous) {
        const busy = [...this.#pending.values()].some((p) => p.link === old);
        if (busy && this.clock.now() < deadline) {
          wait.start(100, check);
          return;
        }
        this.#previous = undefined;
        this.#detach(old, 1000, "hand-off");
        this.#linkLost(old);
      }
      current.seen = undefined;
      this.emit("handoff", { phase: "completed" });
    };
    check();
  }

  // ---- Frames in ----------------------------------------------------------------------------------

  #data(link: Link, data: unknown): void {
    if (typeof data !== "string") return;
    const other = link === this.#current ? this.#previous : this.#current;
    if (link.seen && other?.seen) {
      if (other.seen.delete(data)) return; // the same broadcast, already applied from the other socket
      link.seen.add(data);
      if (link.seen.size > DUPLICATE_WINDOW) link.seen.delete(link.seen.values().next().value as string);
    }
    let frame: ServerFrame | BatchFrame;
    try {
      const parsed: unknown = JSON.parse(data);
      if (!isFrame(parsed)) return;
      frame = parsed as ServerFrame | BatchFrame;
    } catch {
      return;
    }
    // A BATCH carries events in their order: each is applied as if it had come alone.
    const events = frame.type === "BATCH" ? unbatch(frame) : [frame];
    for (const event of events) {
      this.#apply(link, event);
      this.emit("frame", event);
    }
  }

  #apply(link: Link, frame: ServerFrame): void {
    const requestId = "requestId" in frame ? frame.requestId : undefined;
    const pending = requestId === undefined ? undefined : this.#pending.get(requestId);
    if (pending) {
      this.#answered(pending, frame);
    } else if (frame.type === "ERROR" && frame.code === "UNKNOWN_CONNECTION") {
      // The server forgot this connection (expired, or cut): a new one, with a fresh token.
      if (link === this.#current) this.#drop(link, "the server no longer knows this connection");
      return;
    }
    switch (frame.type) {
      case "NEW_MESSAGE":
      case "THREAD_REPLY":
      case "MESSAGE_EDITED":
        this.#conversations.get(frame.data.conversationId)?.receive(frame);
        break;
      case "MESSAGE_DELETED":
      case "REACTIONS_CHANGED":
      case "TYPING_START":
      case "TYPING_STOP":
      case "READ_RECEIPT":
      case "MEMBER_JOINED":
      case "MEMBER_REMOVED":
        this.#conversations.get(frame.conversationId)?.receive(frame);
        break;
      case "PRESENCE":
        this.emit("presence", frame);
        break;
      case "NOTIFICATION": {
        const id = frame.notification.notificationId;
        if (this.#notifications.has(id)) break;
        this.#notifications.add(id);
        if (this.#notifications.size > DUPLICATE_WINDOW) this.#notifications.delete(this.#notifications.values().next().value as string);
        this.emit("notification", frame.notification);
        break;
      }
      default:
        break;
    }
  }

  #answered(p: Pending, frame: ServerFrame): void {
    this.#pending.delete(p.requestId);
    p.timer.stop();
    const item = p.outbox;
    if (frame.type === "ERROR") {
      const error = MessagingError.fromFrame(frame);
      if (frame.code === "UNKNOWN_CONNECTION" && p.link && p.link === this.#current) {
        // Not the request's fault: it goes again on the next connection.
        if (item) item.inFlight = false;
        else if (p.idempotent) this.#queued.push(p);
        else p.reject(new MessagingError("DISCONNECTED", error.message, { retryable: true, requestId: p.requestId }));
        this.#drop(p.link, "the server no longer knows this connection");
        return;
      }
      if (item) {
        this.#outboxRefused(item, error);
        return;
      }
      p.reject(error);
      return;
    }
    if (item) {
      this.#outboxAcknowledged(item, frame as Ack);
      return;
    }
    p.resolve(frame as never);
  }

  // ---- Frames out ---------------------------------------------------------------------------------

  #request(frame: { type: string } & Record<string, unknown>, outbox: OutboxItem | undefined): Promise<unknown> {
    if (this.#state === "closed" || this.#state === "failed") {
      return Promise.reject(new MessagingError("CLOSED", `the client is ${this.#state}`));
    }
    const requestId = `r${++this.#requests}`;
    const json = JSON.stringify({ ...frame, requestId });
    const bytes = frameBytes(json);
    if (bytes > MAX_FRAME_BYTES) {
      return Promise.reject(
        new MessagingError("FRAME_TOO_LARGE", `${frame.type} is ${bytes} bytes; a frame may be at most ${MAX_FRAME_BYTES} (32 KB)`),
      );
    }
    return new Promise((resolve, reject) => {
      const p: Pending = {
        requestId,
        frame,
        json,
        resolve: resolve as (frame: never) => void,
        reject,
        timer: new Timer(this.clock),
        link: undefined,
        idempotent: IDEMPOTENT_REQUESTS.has(frame.type as ClientFrame["type"]),
        outbox,
      };
      const link = this.#current;
      if (link?.opened && link.socket.readyState === OPEN) this.#transmit(p, link);
      else if (this.#state === "suspended" && !outbox) {
        reject(new MessagingError("DISCONNECTED", "not connected (suspended)", { retryable: true, requestId }));
      } else this.#queued.push(p);
    });
  }

  #transmit(p: Pending, link: Link): void {
    this.#pending.set(p.requestId, p);
    p.link = link;
    if (p.outbox) p.outbox.inFlight = true;
    p.timer.start(this.#o.requestTimeoutMs, () => this.#timedOut(p));
    try {
      link.socket.send(p.json);
    } catch {
      // The socket is closing: its close event moves this request on.
    }
    if (link === this.#current) this.#touch();
  }

  #timedOut(p: Pending): void {
    if (this.#pending.get(p.requestId) !== p) return;
    this.#pending.delete(p.requestId);
    const error = new MessagingError("TIMEOUT", `no answer to ${p.frame.type} in ${this.#o.requestTimeoutMs} ms`, {
      retryable: true,
      requestId: p.requestId,
    });
    if (p.outbox) {
      this.#outboxRetry(p.outbox, undefined);
      return;
    }
    p.reject(error);
  }

  #flushQueued(): void {
    const link = this.#current;
    if (!link?.opened) return;
    for (const p of this.#queued.splice(0)) this.#transmit(p, link);
  }

  /** A link is gone: its unanswered requests move on (sends and reads again, other writes fail). */
  #linkLost(link: Link): void {
    for (const p of [...this.#pending.values()]) {
      if (p.link !== link) continue;
      this.#pending.delete(p.requestId);
      p.timer.stop();
      p.link = undefined;
      if (p.outbox) {
        p.outbox.inFlight = false;
      } else if (p.idempotent) {
        // Fresh requestId: an answer still in flight on the old socket must not settle it twice.
        const again = { ...p, requestId: `r${++this.#requests}` };
        again.json = JSON.stringify({ ...p.frame, requestId: again.requestId });
        if (this.#current?.opened) this.#transmit(again, this.#current);
        else this.#queued.push(again);
      } else {
        p.reject(
          new MessagingError("DISCONNECTED", `the connection was lost before ${p.frame.type} was answered: it may or may not have been applied`, {
            retryable: true,
            requestId: p.requestId,
          }),
        );
      }
    }
    this.#pumpOutbox();
  }

  #sendTyping(conversationId: string, type: "TYPING_START" | "TYPING_STOP"): void {
    const link = this.#current;
    if (!link?.opened || link.socket.readyState !== OPEN) return; // typing is ephemeral: not queued
    try {
      link.socket.send(JSON.stringify({ type, conversationId }));
    } catch {
      return;
    }
    this.#touch();
  }

  // ---- The outbox ---------------------------------------------------------------------------------

  async #loadOutbox(): Promise<void> {
    const entries = await this.#storage.load();
    entries.sort((a, b) => a.createdAt - b.createdAt);
    for (const entry of entries) {
      if (!this.#outbox.has(entry.clientMessageId)) {
        this.#outbox.set(entry.clientMessageId, { entry, resolve: undefined, reject: undefined, inFlight: false, notBefore: 0, attempts: 0 });
      }
    }
  }

  async #sendMessage(conversationId: string, content: OutgoingContent, parentSeq?: number): Promise<Ack> {
    const clientMessageId = this.#newId();
    const frame: OutboxEntry["frame"] = {
      type: "CHAT_MESSAGE",
      conversationId,
      clientMessageId,
      content: outgoing(content),
      ...(parentSeq === undefined ? {} : { parentSeq }),
    };
    const bytes = frameBytes(JSON.stringify({ ...frame, requestId: "r0000000000" }));
    if (bytes > MAX_FRAME_BYTES) {
      const error = new MessagingError("FRAME_TOO_LARGE", `the message is ${bytes} bytes as a frame; a frame may be at most ${MAX_FRAME_BYTES} (32 KB)`);
      throw error;
    }
    if (this.#state === "closed" || this.#state === "failed") throw new MessagingError("CLOSED", `the client is ${this.#state}`);
    const entry: OutboxEntry = { clientMessageId, conversationId, frame, createdAt: this.clock.now() };
    this.#conversations.get(conversationId)?.pending(echoOf(frame, "sending"));
    await this.#storage.put(entry);
    return new Promise<Ack>((resolve, reject) => {
      this.#outbox.set(clientMessageId, { entry, resolve, reject, inFlight: false, notBefore: 0, attempts: 0 });
      this.#pumpOutbox();
    });
  }

  /** Sends the oldest waiting message of each conversation: one in flight per conversation keeps your own messages in the order you sent them. */
  #pumpOutbox(): void {
    const link = this.#current;
    if (!link?.opened || link.socket.readyState !== OPEN) return;
    const now = this.clock.now();
    const busy = new Set<string>();
    let wakeAt: number | undefined;
    for (const item of [...this.#outbox.values()]) {
      const { conversationId } = item.entry;
      if (busy.has(conversationId)) continue;
      busy.add(conversationId);
      if (item.inFlight) continue;
      if (now - item.entry.createdAt > OUTBOX_MAX_AGE_MS) {
        busy.delete(conversationId);
        this.#outboxGiveUp(item, new MessagingError("EXPIRED", "unacknowledged for 23 hours: resending could store it twice"), false);
        continue;
      }
      if (item.notBefore > now) {
        wakeAt = Math.min(wakeAt ?? Infinity, item.notBefore);
        continue;
      }
      item.attempts++;
      item.inFlight = true;
      void this.#request(item.entry.frame as unknown as { type: string } & Record<string, unknown>, item).catch(() => {
        // Settled through the outbox item.
      });
    }
    if (wakeAt !== undefined) this.#outboxTimer.start(Math.max(0, wakeAt - now), () => this.#pumpOutbox());
  }

  #outboxAcknowledged(item: OutboxItem, ack: Ack): void {
    this.#outbox.delete(item.entry.clientMessageId);
    void this.#storage.delete(item.entry.clientMessageId);
    const { conversationId, clientMessageId, frame } = item.entry;
    const conversation = this.#conversations.get(conversationId);
    if (conversation && frame.content.attachments?.length) {
      // The stored message names its files (name, size, type) as the server read them: fetch
      // it rather than make it up. (Your own connection is not sent its broadcast.)
      void conversation.catchUp().catch(() => {});
    } else if (conversation && ack.seq !== undefined && ack.messageId !== undefined) {
      const message: Message = {
        conversationId,
        messageId: ack.messageId,
        seq: ack.seq,
        senderId: this.userId ?? "",
        ...(this.#claims?.name === undefined ? {} : { senderName: this.#claims.name }),
        content: { text: frame.content.text, type: frame.content.type ?? "text", attachments: [] },
        timestamp: ack.timestamp ?? new Date(this.clock.now()).toISOString(),
        edited: false,
        reactions: {},
        threadCount: 0,
        clientMessageId,
        ...(frame.parentSeq === undefined ? {} : { parentSeq: frame.parentSeq }),
      };
      conversation.accept(message);
    }
    item.resolve?.(ack);
    this.emit("sent", { conversationId, clientMessageId, ack });
    this.#pumpOutbox();
  }

  #outboxRefused(item: OutboxItem, error: MessagingError): void {
    if (error.retryable) this.#outboxRetry(item, error.retryAfterMs);
    else this.#outboxGiveUp(item, error);
  }

  #outboxRetry(item: OutboxItem, afterMs: number | undefined): void {
    item.inFlight = false;
    item.notBefore = this.clock.now() + (afterMs ?? backoffDelay(item.attempts, this.#o.backoff, this.#random));
    this.#pumpOutbox();
  }

  #outboxGiveUp(item: OutboxItem, error: MessagingError, pump = true): void {
    this.#outbox.delete(item.entry.clientMessageId);
    void this.#storage.delete(item.entry.clientMessageId);
    const { conversationId, clientMessageId, frame } = item.entry;
    this.#conversations.get(conversationId)?.pending({ ...echoOf(frame, "failed"), error });
    item.reject?.(error);
    this.emit("sendFailed", { conversationId, clientMessageId, error });
    if (pump) this.#pumpOutbox();
  }

  // ---- Bookkeeping --------------------------------------------------------------------------------

  #failOutstanding(error: MessagingError): void {
    for (const p of this.#pending.values()) {
      p.timer.stop();
      if (!p.outbox) p.reject(error);
    }
    this.#pending.clear();
    for (const p of this.#queued.splice(0)) if (!p.outbox) p.reject(error);
    for (const item of this.#outbox.values()) {
      item.inFlight = false;
      item.reject?.(error);
      item.resolve = item.reject = undefined;
    }
    // Entries stay in storage: a persistent outbox resends them when a client starts again.
    this.#outbox.clear();
    this.#outboxLoaded = undefined;
  }

  #stopConnectionTimers(): void {
    this.#handoffTimer.stop();
    this.#keepaliveTimer.stop();
    this.#presenceTimer.stop();
    this.#outboxTimer.stop();
  }

  #stopTimers(): void {
    this.#stopConnectionTimers();
    this.#retryTimer.stop();
  }

  #setState(current: ConnectionState, reason?: MessagingError, retryInMs?: number): void {
    const previous = this.#state;
    if (previous === current && current !== "disconnected" && current !== "suspended") return;
    this.#state = current;
    this.emit("state", {
      previous,
      current,
      ...(reason === undefined ? {} : { reason }),
      ...(retryInMs === undefined ? {} : { retryInMs }),
    });
  }
}

/** The content of a CHAT_MESSAGE frame: its type explicit, attachments only when there are any. */
function outgoing(content: OutgoingContent): OutboxEntry["frame"]["content"] {
  return {
    text: content.text,
    type: content.type ?? "text",
    ...(content.attachments?.length ? { attachments: content.attachments.map((a) => ({ fileId: a.fileId, ...(a.download ? { download: true } : {}) })) } : {}),
  };
}

/** The local echo of a send. */
function echoOf(frame: OutboxEntry["frame"], status: "sending" | "failed"): PendingMessage {
  const { clientMessageId = "", conversationId = "", content, parentSeq } = frame;
  return {
    conversationId,
    clientMessageId,
    content: { text: content.text, type: content.type ?? "text", ...(content.attachments ? { attachments: content.attachments } : {}) },
    ...(parentSeq === undefined ? {} : { parentSeq }),
    status,
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export type { PresenceStatus };

function isFrame(value: unknown): value is { type: string } {
  return value !== null && typeof value === "object" && typeof (value as { type?: unknown }).type === "string";
}

/** A BATCH frame's events: objects with a type, never a nested BATCH (anything else is dropped). */
function unbatch(frame: BatchFrame): ServerFrame[] {
  if (!Array.isArray(frame.events)) return [];
  return frame.events.filter((event): event is ServerFrame => isFrame(event) && (event.type as string) !== "BATCH");
}
