import { Timer, type Clock } from "./clock.js";
import { Emitter } from "./emitter.js";
import { MessagingError } from "./errors.js";
import type { Ack, AttachmentRef, MemberPresence, Message, OutgoingContent, RequestOf, RequestType, Answers, ServerFrame } from "./protocol.js";
import { isVoid, Sequencer } from "./sequencer.js";
import { TypingSender, TypingTracker, type TypingOptions } from "./typing.js";

/** A change to a message already delivered. */
export type MessageUpdate =
  | { kind: "edited"; seq: number; message: Message }
  | { kind: "deleted"; seq: number; messageId: string; deletedBy: string }
  | { kind: "reactions"; seq: number; messageId: string; reactions: Record<string, string[]> }
  | { kind: "thread"; seq: number; threadCount: number };

/** A message sent from here and not yet acknowledged: show it at once, replace it when its `message` event comes. */
export interface PendingMessage {
  conversationId: string;
  clientMessageId: string;
  content: { text: string; type: "text" | "file" | "image"; attachments?: AttachmentRef[] };
  parentSeq?: number;
  status: "sending" | "failed";
  error?: MessagingError;
}

export interface ConversationEvents {
  [event: string]: unknown;
  /** Every message once, in `seq` order: live, caught up after a reconnect, or your own once acknowledged. */
  message: Message;
  /** An edit, delete, reaction change or thread count of a delivered message. */
  update: MessageUpdate;
  /** Messages that can no longer be caught up (history no longer holds them). */
  gap: { conversationId: string; fromSeq: number; toSeq: number };
  /** Your own sends, from the moment `send` is called until acknowledged (then `message`) or failed. */
  pending: PendingMessage;
  /** Who is typing now (never you). */
  typing: string[];
  read: { userId: string; seq: number };
  memberJoined: { userId: string };
  memberRemoved: { userId: string; removedBy: string };
  /** This conversation stopped being followed: you were removed, or it no longer exists. */
  ended: { reason: MessagingError };
}

/** What a conversation needs from its client. */
export interface ConversationHost {
  readonly clock: Clock;
  readonly userId: string | undefined;
  readonly typingOptions: TypingOptions;
  readonly gapWaitMs: number;
  readonly pageSize: number;
  request<T extends RequestType>(frame: RequestOf<T>): Promise<Answers[T]>;
  sendTyping(conversationId: string, type: "TYPING_START" | "TYPING_STOP"): void;
  sendMessage(conversationId: string, content: OutgoingContent, parentSeq?: number): Promise<Ack>;
  forget(conversationId: string): void;
}

/** Updates held for a `seq` not yet delivered, at most this many (the oldest go; history has the current state). */
const MAX_DEFERRED = 500;
/** Catch-ups in a row that leave the same hole before it is declared a gap. */
const CATCH_UPS_BEFORE_GAP = 3;

export interface OpenResult {
  /** The newest page, oldest first (empty when `sinceSeq` was given: those arrive as `message` events). */
  messages: Message[];
  members: MemberPresence[];
  moreMembers: boolean;
  hasOlder: boolean;
}

/**
 * One conversation followed by the client: its messages in order, once, across reconnects and
 * hand-offs; its typing indicators; sends through the client's outbox.
 */
export class ConversationHandle extends Emitter<ConversationEvents> {
  readonly id: string;
  #host: ConversationHost;
  #sequencer = new Sequencer();
  #deferred = new Map<number, MessageUpdate[]>();
  #typingOut: TypingSender;
  #typingIn: TypingTracker;
  #gapTimer: Timer;
  #olderCursor: string | undefined;
  #opened = false;
  #ended = false;
  #catching: Promise<void> | undefined;
  #again = false;
  #stuck = { firstHeld: undefined as number | undefined, times: 0 };

  constructor(id: string, host: ConversationHost) {
    super();
    this.id = id;
    this.#host = host;
    this.#typingOut = new TypingSender(host.clock, host.typingOptions, (type) => host.sendTyping(id, type));
    this.#typingIn = new TypingTracker(host.clock, (users) => this.emit("typing", users));
    this.#gapTimer = new Timer(host.clock);
  }

  /** The newest `seq` delivered without a hole before it. */
  get lastSeq(): number | undefined {
    return this.#sequencer.through;
  }

  get typingUsers(): string[] {
    return this.#typingIn.users;
  }

  get opened(): boolean {
    return this.#opened;
  }

  /**
   * Starts following the conversation. Without `sinceSeq`: loads the newest page and delivers
   * everything after it as `message` events. With `sinceSeq` (the newest `seq` you already
   * have, say from storage): catches up from there, every later message a `message` event.
   */
  async open(options: { sinceSeq?: number; limit?: number } = {}): Promise<OpenResult> {
    this.#opened = true;
    this.#ended = false;
    if (options.sinceSeq !== undefined) {
      this.#deliver(this.#sequencer.start(options.sinceSeq));
      await this.catchUp();
      return { messages: [], members: [], moreMembers: false, hasOlder: options.sinceSeq > 0 };
    }
    const page = await this.#host.request({ type: "GET_HISTORY", conversationId: this.id, limit: options.limit ?? this.#host.pageSize });
    const messages = page.messages.filter((m) => !isVoid(m)).reverse();
    const newest = page.messages.reduce((max, m) => Math.max(max, m.seq), 0);
    this.#olderCursor = page.nextCursor;
    this.#deliver(this.#sequencer.start(Math.max(newest, this.#sequencer.through ?? 0)));
    return { messages, members: page.members, moreMembers: page.moreMembers === true, hasOlder: page.nextCursor !== undefined };
  }

  /** The page before the oldest loaded, oldest first. */
  async loadOlder(limit?: number): Promise<{ messages: Message[]; hasOlder: boolean }> {
    if (!this.#olderCursor) return { messages: [], hasOlder: false };
    const page = await this.#host.request({
      type: "GET_HISTORY",
      conversationId: this.id,
      limit: limit ?? this.#host.pageSize,
      cursor: this.#olderCursor,
    });
    this.#olderCursor = page.nextCursor;
    return { messages: page.messages.filter((m) => !isVoid(m)).reverse(), hasOlder: page.nextCursor !== undefined };
  }

  /**
   * Sends a message (through the outbox: retried across reconnects, never stored twice);
   * resolves with its ACK. Files: `{ type: "file", text: caption, attachments: [{ fileId }] }`.
   */
  send(content: string | OutgoingContent, options: { parentSeq?: number } = {}): Promise<Ack> {
    this.#typingOut.stop();
    const body = typeof content === "string" ? { text: content } : content;
    return this.#host.sendMessage(this.id, body, options.parentSeq);
  }

  /** Call on every input event: at most one TYPING_START per few seconds, a TYPING_STOP after idle. */
  keystroke(): void {
    this.#typingOut.keystroke();
  }

  stopTyping(): void {
    this.#typingOut.stop();
  }

  /** Moves your read marker (to the newest delivered message by default). */
  async markRead(seq: number | undefined = this.lastSeq): Promise<Ack | undefined> {
    if (seq === undefined || seq < 1) return undefined;
    return this.#host.request({ type: "MARK_READ", conversationId: this.id, seq });
  }

  edit(seq: number, text: string): Promise<Ack> {
    return this.#host.request({ type: "EDIT_MESSAGE", conversationId: this.id, seq, content: { text, type: "text" } });
  }

  delete(seq: number): Promise<Ack> {
    return this.#host.request({ type: "DELETE_MESSAGE", conversationId: this.id, seq });
  }

  react(seq: number, emoji: string): Promise<Ack> {
    return this.#host.request({ type: "ADD_REACTION", conversationId: this.id, seq, emoji });
  }

  unreact(seq: number, emoji: string): Promise<Ack> {
    return this.#host.request({ type: "REMOVE_REACTION", conversationId: this.id, seq, emoji });
  }

  thread(seq: number, options: { limit?: number; cursor?: string } = {}): Promise<Answers["GET_THREAD"]> {
    return this.#host.request({ type: "GET_THREAD", conversationId: this.id, seq, ...options });
  }

  /** Stops following: no more events, the typing indicator cleared. */
  close(): void {
    this.#typingOut.stop();
    this.#stop();
    this.#host.forget(this.id);
  }

  // ---- Driven by the client ------------------------------------------------------------------

  /** A frame about this conversation. */
  receive(frame: ServerFrame): void {
    if (this.#ended || !this.#opened) return;
    switch (frame.type) {
      case "NEW_MESSAGE":
        this.accept(frame.data);
        break;
      case "THREAD_REPLY":
        this.accept(frame.data);
        if (frame.data.parentSeq !== undefined) {
          this.#update({ kind: "thread", seq: frame.data.parentSeq, threadCount: frame.threadCount });
        }
        break;
      case "MESSAGE_EDITED":
        this.#update({ kind: "edited", seq: frame.data.seq, message: frame.data });
        break;
      case "MESSAGE_DELETED":
        this.#update({ kind: "deleted", seq: frame.seq, messageId: frame.messageId, deletedBy: frame.deletedBy });
        break;
      case "REACTIONS_CHANGED":
        this.#update({ kind: "reactions", seq: frame.seq, messageId: frame.messageId, reactions: frame.reactions });
        break;
      case "TYPING_START":
        if (frame.userId !== this.#host.userId) this.#typingIn.start(frame.userId, frame.expiresAt);
        break;
      case "TYPING_STOP":
        this.#typingIn.stop(frame.userId);
        break;
      case "READ_RECEIPT":
        this.emit("read", { userId: frame.userId, seq: frame.seq });
        break;
      case "MEMBER_JOINED":
        this.emit("memberJoined", { userId: frame.userId });
        break;
      case "MEMBER_REMOVED":
        this.emit("memberRemoved", { userId: frame.userId, removedBy: frame.removedBy });
        if (frame.userId === this.#host.userId) {
          this.end(new MessagingError("NOT_A_MEMBER", `${frame.removedBy} removed you from conversation ${this.id}`));
        }
        break;
      default:
        break;
    }
  }

  /** A message from anywhere (live, history, our own ACK): delivered once, in order. */
  accept(message: Message): void {
    if (this.#ended || !this.#opened) return;
    this.#deliver(this.#sequencer.accept(message));
    if (this.#sequencer.waiting) {
      if (!this.#gapTimer.pending) this.#gapTimer.start(this.#host.gapWaitMs, () => void this.catchUp().catch(() => {}));
    } else {
      this.#gapTimer.stop();
    }
  }

  /** A local echo's progress. */
  pending(message: PendingMessage): void {
    this.emit("pending", message);
  }

  /**
   * Fetches every message after the last delivered one (GET_HISTORY `sinceSeq`, page by page)
   * and delivers them in order. One at a time; a call during one runs another after it.
   */
  catchUp(): Promise<void> {
    if (!this.#opened || this.#ended || this.#sequencer.through === undefined) return Promise.resolve();
    if (this.#catching) {
      this.#again = true;
      return this.#catching;
    }
    this.#catching = (async () => {
      try {
        do {
          this.#again = false;
          await this.#catchUpOnce();
        } while (this.#again && !this.#ended);
      } finally {
        this.#catching = undefined;
      }
    })();
    return this.#catching;
  }

  /** Typing indicators belong to a connection: a lost one clears ours and theirs. */
  connectionLost(): void {
    this.#typingOut.reset();
    this.#typingIn.clear();
  }

  /** The client closed or failed: nothing of this conversation may wait on a timer. */
  halt(): void {
    this.#gapTimer.stop();
    this.#typingOut.reset();
    this.#typingIn.clear();
  }

  end(reason: MessagingError): void {
    if (this.#ended) return;
    this.#stop();
    this.emit("ended", { reason });
  }

  // ---- Inside ----------------------------------------------------------------------------------

  async #catchUpOnce(): Promise<void> {
    const since = this.#sequencer.through;
    if (since === undefined) return;
    let cursor: string | undefined;
    let first = true;
    try {
      do {
        const page = await this.#host.request({
          type: "GET_HISTORY",
          conversationId: this.id,
          sinceSeq: since,
          limit: this.#host.pageSize,
          ...(cursor === undefined ? {} : { cursor }),
        });
        if (this.#ended) return;
        const oldest = page.messages[0];
        if (first && oldest && oldest.seq > since + 1 && (this.#sequencer.through ?? 0) < oldest.seq - 1) {
          // History no longer holds what came before its oldest message.
          this.#skip(oldest.seq);
        }
        first = false;
        for (const message of page.messages) this.accept(message);
        cursor = page.nextCursor;
      } while (cursor !== undefined);
    } catch (error) {
      if (error instanceof MessagingError && (error.code === "NOT_A_MEMBER" || error.code === "CONVERSATION_NOT_FOUND")) {
        this.end(error);
        return;
      }
      // A catch-up that failed for a passing reason (no answer in time, a throttle, the
      // connection lost with it) is tried again: nothing else may come to reveal the hole.
      // (A closed or failed client is not passing: nothing is retried then.)
      if (!this.#ended && error instanceof MessagingError && error.retryable) {
        const wait = error.retryAfterMs ?? this.#host.gapWaitMs;
        this.#gapTimer.start(wait, () => void this.catchUp().catch(() => {}));
      }
      throw error;
    }
    // Still a hole after history answered: a message whose number was taken but not yet
    // written (it is written, or voided, within a minute). Wait and ask again; a hole that
    // stays through several catch-ups is given up.
    const held = this.#sequencer.firstHeld;
    if (held === undefined) {
      this.#stuck = { firstHeld: undefined, times: 0 };
      return;
    }
    this.#stuck = this.#stuck.firstHeld === held ? { firstHeld: held, times: this.#stuck.times + 1 } : { firstHeld: held, times: 1 };
    if (this.#stuck.times >= CATCH_UPS_BEFORE_GAP) {
      this.#skip(held);
      this.#stuck = { firstHeld: undefined, times: 0 };
    } else {
      this.#gapTimer.start(this.#host.gapWaitMs * 2 ** this.#stuck.times, () => void this.catchUp().catch(() => {}));
    }
  }

  #skip(seq: number): void {
    const { gap, messages } = this.#sequencer.skipTo(seq);
    if (gap) this.emit("gap", { conversationId: this.id, ...gap });
    this.#deliver(messages);
  }

  #deliver(messages: Message[]): void {
    for (const message of messages) {
      this.#typingIn.stop(message.senderId);
      this.emit("message", message);
      const deferred = this.#deferred.get(message.seq);
      if (deferred) {
        this.#deferred.delete(message.seq);
        for (const update of deferred) this.emit("update", update);
      }
    }
  }

  #update(update: MessageUpdate): void {
    const through = this.#sequencer.through;
    if (through !== undefined && update.seq <= through) {
      this.emit("update", update);
      return;
    }
    // About a message still on its way: applied once it is delivered.
    const list = this.#deferred.get(update.seq) ?? [];
    list.push(update);
    this.#deferred.set(update.seq, list);
    if (this.#deferred.size > MAX_DEFERRED) {
      const oldest = this.#deferred.keys().next().value;
      if (oldest !== undefined) this.#deferred.delete(oldest);
    }
  }

  #stop(): void {
    this.#ended = true;
    this.#opened = false;
    this.#gapTimer.stop();
    this.#typingIn.clear();
    this.#deferred.clear();
  }
}
