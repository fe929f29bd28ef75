import { useCallback, useMemo } from "react";
import {
  MessagingError,
  type Ack,
  type ConversationHandle,
  type Message,
  type MessagingClient,
  type OutgoingContent,
  type PendingMessage,
} from "@stackpro/messaging-client";
import { useLiveStore } from "./context.js";
import { applyUpdate, insertBySeq, toggleReaction, updateBySeq } from "./messages.js";
import { LiveStore, peek } from "./store.js";
import type { ConversationsStore } from "./conversations.js";

/** Messages a conversation view keeps in memory; beyond it the oldest go (and `hasOlder` is false until it is reopened). */
export const MAX_MESSAGES = 1_000;
/** Unread messages are counted up to this: show "100+". */
export const UNREAD_CAP = 100;
/** Gaps remembered per conversation (the newest). */
const MAX_GAPS = 20;

export interface ConversationView {
  /** `loading` until the first page came; `ended` when you were removed or it is gone; `error` when it could not be opened. */
  status: "loading" | "ready" | "ended" | "error";
  /** Top-level messages, oldest first, each `seq` once (thread replies are in {@link useThread}). */
  messages: readonly Message[];
  /** Your sends not yet acknowledged (`sending`) or given up (`failed`, with `error`), top-level and replies. */
  pending: readonly PendingMessage[];
  hasOlder: boolean;
  loadingOlder: boolean;
  /** Who is typing now (never you). */
  typingUsers: readonly string[];
  /** Your read marker here. */
  lastReadSeq: number;
  /** Others' messages after your read marker, counted up to {@link UNREAD_CAP}. */
  unread: number;
  /** Newest read receipt of each member (userId → seq). */
  readBy: Readonly<Record<string, number>>;
  /** Ranges history could no longer cover after a reconnect. */
  gaps: readonly { fromSeq: number; toSeq: number }[];
  error: MessagingError | undefined;
}

const INITIAL: ConversationView = {
  status: "loading",
  messages: [],
  pending: [],
  hasOlder: false,
  loadingOlder: false,
  typingUsers: [],
  lastReadSeq: 0,
  unread: 0,
  readBy: {},
  gaps: [],
  error: undefined,
};

/** One conversation: opened once for every component showing it, caught up by the client after each reconnect. */
export class ConversationStore extends LiveStore<ConversationView> {
  readonly id: string;
  #handle: ConversationHandle | undefined;
  #handleOffs: (() => void)[] = [];
  #opening: Promise<void> | undefined;

  constructor(client: MessagingClient, id: string) {
    super(client, INITIAL);
    this.id = id;
  }

  protected listen(): (() => void)[] {
    return [
      this.client.on("sent", ({ conversationId, clientMessageId }) => {
        if (conversationId === this.id) this.#dropPending(clientMessageId);
      }),
    ];
  }

  protected async load(): Promise<void> {
    // An opened handle is caught up by the client itself after a reconnect.
    if (this.#handle?.opened && this.snapshot.status === "ready") return;
    if (this.#opening) return this.#opening;
    this.#opening = this.#open().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  protected override stopped(): void {
    this.#detach();
  }

  async #open(): Promise<void> {
    this.#detach();
    const handle = this.client.conversation(this.id);
    this.#attach(handle);
    const list = peek<ConversationsStore>(this.client, "conversations");
    const known = list?.getSnapshot().conversations.find((c) => c.conversationId === this.id);
    this.set((v) => ({ ...v, status: "loading", error: undefined, lastReadSeq: Math.max(v.lastReadSeq, known?.lastReadSeq ?? 0) }));
    try {
      const page = await handle.open();
      if (this.#handle !== handle) return;
      this.set((v) => {
        let messages: readonly Message[] = v.messages;
        for (const m of page.messages) if (m.parentSeq === undefined) messages = insertBySeq(messages, m);
        return this.#counted({ ...v, status: "ready", messages, hasOlder: page.hasOlder, error: undefined });
      });
    } catch (error) {
      if (this.#handle !== handle) return;
      const reason = asError(error);
      const gone = reason.code === "NOT_A_MEMBER" || reason.code === "CONVERSATION_NOT_FOUND" || reason.code === "CROSS_TENANT";
      this.set((v) => ({ ...v, status: gone ? "ended" : "error", error: reason }));
    }
  }

  #attach(handle: ConversationHandle): void {
    this.#handle = handle;
    this.#handleOffs = [
      handle.on("message", (m) => {
        if (m.clientMessageId !== undefined) this.#dropPending(m.clientMessageId);
        if (m.parentSeq !== undefined) return;
        this.set((v) => this.#counted({ ...v, messages: this.#bounded(insertBySeq(v.messages, m), v) }));
      }),
      handle.on("update", (update) => {
        this.set((v) => {
          const messages = updateBySeq(v.messages, update.seq, (m) => applyUpdate(m, update));
          return messages === v.messages ? v : this.#counted({ ...v, messages });
        });
      }),
      handle.on("pending", (p) => {
        this.set((v) => ({ ...v, pending: [...v.pending.filter((q) => q.clientMessageId !== p.clientMessageId), p] }));
      }),
      handle.on("typing", (users) => this.set((v) => ({ ...v, typingUsers: users }))),
      handle.on("read", ({ userId, seq }) => {
        this.set((v) => ((v.readBy[userId] ?? 0) >= seq ? v : { ...v, readBy: { ...v.readBy, [userId]: seq } }));
      }),
      handle.on("gap", ({ fromSeq, toSeq }) => {
        this.set((v) => ({ ...v, gaps: [...v.gaps, { fromSeq, toSeq }].slice(-MAX_GAPS) }));
      }),
      handle.on("ended", ({ reason }) => this.set((v) => ({ ...v, status: "ended", error: reason, typingUsers: [] }))),
    ];
  }

  #detach(): void {
    for (const off of this.#handleOffs.splice(0)) off();
    const handle = this.#handle;
    this.#handle = undefined;
    handle?.close();
  }

  #dropPending(clientMessageId: string): void {
    this.set((v) => {
      const pending = v.pending.filter((p) => p.clientMessageId !== clientMessageId);
      return pending.length === v.pending.length ? v : { ...v, pending };
    });
  }

  /** At most MAX_MESSAGES in memory: the oldest go, and with them the way back (reopen to page again). */
  #bounded(messages: Message[], v: ConversationView): Message[] {
    if (messages.length <= MAX_MESSAGES) return messages;
    v.hasOlder = false;
    return messages.slice(messages.length - MAX_MESSAGES);
  }

  #counted(v: ConversationView): ConversationView {
    const me = this.client.userId;
    let unread = 0;
    for (let i = v.messages.length - 1; i >= 0 && unread < UNREAD_CAP; i--) {
      const m = v.messages[i] as Message;
      if (m.seq <= v.lastReadSeq) break;
      if (m.senderId !== me && !m.deleted) unread++;
    }
    return unread === v.unread ? v : { ...v, unread };
  }

  // ---- Actions ---------------------------------------------------------------------------------

  #need(): ConversationHandle {
    return this.#handle ?? this.client.conversation(this.id);
  }

  /** Text, or files (`{ type: "file", text: caption, attachments: [{ fileId, download }] }`). */
  send(content: string | OutgoingContent, options: { parentSeq?: number } = {}): Promise<Ack> {
    return this.#need().send(content, options);
  }

  /** Sends a failed message's text again (a new send) and drops the failed one. */
  retry(clientMessageId: string): Promise<Ack> | undefined {
    const failed = this.snapshot.pending.find((p) => p.clientMessageId === clientMessageId && p.status === "failed");
    if (!failed) return undefined;
    this.#dropPending(clientMessageId);
    return this.send(failed.content, failed.parentSeq === undefined ? {} : { parentSeq: failed.parentSeq });
  }

  discard(clientMessageId: string): void {
    this.#dropPending(clientMessageId);
  }

  async loadOlder(limit?: number): Promise<void> {
    const handle = this.#handle;
    if (!handle || !this.snapshot.hasOlder || this.snapshot.loadingOlder) return;
    this.set((v) => ({ ...v, loadingOlder: true }));
    try {
      const page = await handle.loadOlder(limit);
      this.set((v) => {
        let messages: readonly Message[] = v.messages;
        for (const m of page.messages) if (m.parentSeq === undefined && messages.length < MAX_MESSAGES) messages = insertBySeq(messages, m);
        return { ...v, messages, hasOlder: page.hasOlder && messages.length < MAX_MESSAGES, loadingOlder: false };
      });
    } catch (error) {
      this.set((v) => ({ ...v, loadingOlder: false, error: asError(error) }));
      throw error;
    }
  }

  /** Moves your read marker to `seq` (the newest message by default), here and in the conversation list. */
  async markRead(seq?: number): Promise<void> {
    const newest = seq ?? this.snapshot.messages[this.snapshot.messages.length - 1]?.seq ?? 0;
    if (newest <= this.snapshot.lastReadSeq) return;
    this.set((v) => this.#counted({ ...v, lastReadSeq: newest }));
    peek<ConversationsStore>(this.client, "conversations")?.markedRead(this.id, newest);
    await this.#need().markRead(newest);
  }

  async edit(seq: number, text: string): Promise<Ack> {
    const ack = await this.#need().edit(seq, text);
    this.set((v) => ({
      ...v,
      messages: updateBySeq(v.messages, seq, (m) => ({ ...m, edited: true, content: { ...m.content, text } })),
    }));
    return ack;
  }

  async remove(seq: number): Promise<Ack> {
    const ack = await this.#need().delete(seq);
    this.set((v) => ({ ...v, messages: updateBySeq(v.messages, seq, (m) => applyUpdate(m, { kind: "deleted", seq, messageId: m.messageId, deletedBy: "" })) }));
    return ack;
  }

  /** Adds your `emoji` to the message, or takes it away if it is there. */
  async toggleReaction(seq: number, emoji: string): Promise<Ack> {
    const me = this.client.userId ?? "";
    const message = this.snapshot.messages.find((m) => m.seq === seq);
    const mine = (message?.reactions[emoji] ?? []).includes(me);
    const handle = this.#need();
    const ack = mine ? await handle.unreact(seq, emoji) : await handle.react(seq, emoji);
    this.set((v) => ({ ...v, messages: updateBySeq(v.messages, seq, (m) => ({ ...m, reactions: toggleReaction(m.reactions, emoji, me, !mine) })) }));
    return ack;
  }

  keystroke(): void {
    this.#handle?.keystroke();
  }

  stopTyping(): void {
    this.#handle?.stopTyping();
  }
}

export function asError(error: unknown): MessagingError {
  return error instanceof MessagingError ? error : new MessagingError("INTERNAL", error instanceof Error ? error.message : String(error));
}

export interface UseConversation extends ConversationView {
  send(content: string | OutgoingContent, options?: { parentSeq?: number }): Promise<Ack>;
  retry(clientMessageId: string): Promise<Ack> | undefined;
  discard(clientMessageId: string): void;
  loadOlder(limit?: number): Promise<void>;
  markRead(seq?: number): Promise<void>;
  edit(seq: number, text: string): Promise<Ack>;
  remove(seq: number): Promise<Ack>;
  toggleReaction(seq: number, emoji: string): Promise<Ack>;
  /** Call on every input event of the composer: typing indicators, debounced. */
  keystroke(): void;
  stopTyping(): void;
}

/**
 * A conversation, live: its messages in `seq` order once each (through reconnects and
 * hand-offs), your pending sends, typing, read receipts, unread count, and its actions.
 */
export function useConversation(conversationId: string): UseConversation {
  const { state, store } = useLiveStore(`conversation:${conversationId}`, (client) => new ConversationStore(client, conversationId));
  const actions = useMemo(
    () => ({
      send: (content: string | OutgoingContent, options?: { parentSeq?: number }) => store.send(content, options),
      retry: (id: string) => store.retry(id),
      discard: (id: string) => store.discard(id),
      loadOlder: (limit?: number) => store.loadOlder(limit),
      markRead: (seq?: number) => store.markRead(seq),
      edit: (seq: number, text: string) => store.edit(seq, text),
      remove: (seq: number) => store.remove(seq),
      toggleReaction: (seq: number, emoji: string) => store.toggleReaction(seq, emoji),
      keystroke: () => store.keystroke(),
      stopTyping: () => store.stopTyping(),
    }),
    [store],
  );
  return useMemo(() => ({ ...state, ...actions }), [state, actions]);
}

// ---- Threads -------------------------------------------------------------------------------------

export interface ThreadView {
  status: "loading" | "ready" | "error";
  parent: Message | undefined;
  /** Replies, oldest first. */
  replies: readonly Message[];
  hasMore: boolean;
  error: MessagingError | undefined;
}

/** Replies kept per thread view. */
const MAX_REPLIES = 500;

export class ThreadStore extends LiveStore<ThreadView> {
  readonly conversationId: string;
  readonly parentSeq: number;
  #cursor: string | undefined;

  constructor(client: MessagingClient, conversationId: string, parentSeq: number) {
    super(client, { status: "loading", parent: undefined, replies: [], hasMore: false, error: undefined });
    this.conversationId = conversationId;
    this.parentSeq = parentSeq;
  }

  protected listen(): (() => void)[] {
    const c = this.client;
    const mine = (conversationId: string) => conversationId === this.conversationId;
    return [
      c.onFrame("THREAD_REPLY", ({ data }) => {
        if (mine(data.conversationId) && data.parentSeq === this.parentSeq) this.#reply(data);
      }),
      c.onFrame("MESSAGE_EDITED", ({ data }) => {
        if (mine(data.conversationId)) this.#change(data.seq, (m) => applyUpdate(m, { kind: "edited", seq: data.seq, message: data }));
      }),
      c.onFrame("MESSAGE_DELETED", (f) => {
        if (mine(f.conversationId)) this.#change(f.seq, (m) => applyUpdate(m, { kind: "deleted", seq: f.seq, messageId: f.messageId, deletedBy: f.deletedBy }));
      }),
      c.onFrame("REACTIONS_CHANGED", (f) => {
        if (mine(f.conversationId)) this.#change(f.seq, (m) => ({ ...m, reactions: f.reactions }));
      }),
    ];
  }

  protected async load(): Promise<void> {
    try {
      const page = await this.client.conversation(this.conversationId).thread(this.parentSeq, { limit: 100 });
      this.#cursor = page.nextCursor;
      this.set((v) => {
        let replies: readonly Message[] = v.replies;
        for (const r of page.replies) replies = insertBySeq(replies, r);
        return { status: "ready", parent: page.parent, replies: replies.slice(-MAX_REPLIES), hasMore: page.nextCursor !== undefined, error: undefined };
      });
    } catch (error) {
      this.set((v) => ({ ...v, status: "error", error: asError(error) }));
    }
  }

  async loadMore(): Promise<void> {
    if (this.#cursor === undefined) return;
    const page = await this.client.conversation(this.conversationId).thread(this.parentSeq, { limit: 100, cursor: this.#cursor });
    this.#cursor = page.nextCursor;
    this.set((v) => {
      let replies: readonly Message[] = v.replies;
      for (const r of page.replies) if (replies.length < MAX_REPLIES) replies = insertBySeq(replies, r);
      return { ...v, replies, hasMore: page.nextCursor !== undefined && replies.length < MAX_REPLIES };
    });
  }

  /** Replies; once acknowledged the reply is shown even if its broadcast is lost with a connection. */
  async reply(text: string): Promise<Ack> {
    const ack = await this.client.conversation(this.conversationId).send(text, { parentSeq: this.parentSeq });
    if (ack.seq !== undefined && ack.messageId !== undefined && !this.snapshot.replies.some((r) => r.seq === ack.seq)) {
      this.#reply({
        conversationId: this.conversationId,
        messageId: ack.messageId,
        seq: ack.seq,
        senderId: this.client.userId ?? "",
        content: { text, type: "text", attachments: [] },
        timestamp: ack.timestamp ?? new Date().toISOString(),
        edited: false,
        reactions: {},
        threadCount: 0,
        parentSeq: this.parentSeq,
      });
    }
    return ack;
  }

  #reply(m: Message): void {
    this.set((v) => {
      const replies = insertBySeq(v.replies, m);
      return { ...v, replies: replies.length > MAX_REPLIES ? replies.slice(-MAX_REPLIES) : replies };
    });
  }

  #change(seq: number, change: (m: Message) => Message): void {
    this.set((v) => {
      const parent = v.parent && v.parent.seq === seq ? change(v.parent) : v.parent;
      const replies = updateBySeq(v.replies, seq, change);
      return parent === v.parent && replies === v.replies ? v : { ...v, parent, replies };
    });
  }
}

export interface UseThread extends ThreadView {
  reply(text: string): Promise<Ack>;
  loadMore(): Promise<void>;
}

/** The thread under message `parentSeq`: its parent and replies, live. */
export function useThread(conversationId: string, parentSeq: number): UseThread {
  const { state, store } = useLiveStore(`thread:${conversationId}:${parentSeq}`, (client) => new ThreadStore(client, conversationId, parentSeq));
  const reply = useCallback((text: string) => store.reply(text), [store]);
  const loadMore = useCallback(() => store.loadMore(), [store]);
  return useMemo(() => ({ ...state, reply, loadMore }), [state, reply, loadMore]);
}
