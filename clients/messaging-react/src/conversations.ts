import { useMemo } from "react";
import type { Ack, ConversationSummary, MessagingClient, MessagingError, RequestOf } from "@stackpro/messaging-client";
import { useLiveStore, useMessagingClient } from "./context.js";
import { asError, UNREAD_CAP } from "./conversation.js";
import { appendNew, LiveStore } from "./store.js";

/** Conversations listed per page. */
const PAGE = 50;
/** Conversations kept in the list. */
const MAX_CONVERSATIONS = 1_000;

export interface ConversationsView {
  status: "loading" | "ready" | "error";
  /** Your conversations, most recent activity first, each with its unread count (up to 100). */
  conversations: readonly ConversationSummary[];
  hasMore: boolean;
  error: MessagingError | undefined;
}

/** Your conversation list, kept live: created, joined, removed, new messages and unread counts. */
export class ConversationsStore extends LiveStore<ConversationsView> {
  #cursor: string | undefined;
  /** Per conversation: seqs counted unread since the list was loaded (up to UNREAD_CAP), and the newest seq the load knew. */
  #counted = new Map<string, { floor: number; seqs: Set<number> }>();

  constructor(client: MessagingClient) {
    super(client, { status: "loading", conversations: [], hasMore: false, error: undefined });
  }

  protected listen(): (() => void)[] {
    const c = this.client;
    return [
      c.onFrame("CONVERSATION_CREATED", ({ conversation }) => {
        this.#upsert({ ...conversation, lastReadSeq: 0, unreadCount: 0 });
      }),
      c.onFrame("MEMBER_JOINED", ({ userId }) => {
        // Added to a conversation: its summary (title, kind, unread) comes from the server.
        if (userId === c.userId) void this.load();
      }),
      c.onFrame("MEMBER_REMOVED", ({ conversationId, userId }) => {
        if (userId !== c.userId) return;
        this.#counted.delete(conversationId);
        this.set((v) => ({ ...v, conversations: v.conversations.filter((x) => x.conversationId !== conversationId) }));
      }),
      c.onFrame("NEW_MESSAGE", ({ data }) => {
        const current = this.snapshot.conversations.find((x) => x.conversationId === data.conversationId);
        if (!current) return;
        const counted = this.#counted.get(data.conversationId) ?? { floor: current.lastSeq, seqs: new Set<number>() };
        this.#counted.set(data.conversationId, counted);
        // A message is its seq: one delivered twice (a resent send, two sockets in a hand-off) counts once.
        const fresh =
          data.senderId !== c.userId &&
          data.seq > counted.floor &&
          data.seq > current.lastReadSeq &&
          !counted.seqs.has(data.seq) &&
          current.unreadCount < UNREAD_CAP;
        if (fresh) counted.seqs.add(data.seq);
        this.#upsert({
          ...current,
          lastActivity: data.timestamp > current.lastActivity ? data.timestamp : current.lastActivity,
          lastSeq: Math.max(current.lastSeq, data.seq),
          unreadCount: current.unreadCount + (fresh ? 1 : 0),
        });
      }),
    ];
  }

  protected async load(): Promise<void> {
    try {
      const page = await this.client.listConversations({ limit: PAGE });
      this.#cursor = page.nextCursor;
      this.#counted.clear();
      this.set({ status: "ready", conversations: sorted(page.conversations), hasMore: page.nextCursor !== undefined, error: undefined });
    } catch (error) {
      this.set((v) => ({ ...v, status: "error", error: asError(error) }));
    }
  }

  async loadMore(): Promise<void> {
    if (this.#cursor === undefined || this.snapshot.conversations.length >= MAX_CONVERSATIONS) return;
    const page = await this.client.listConversations({ limit: PAGE, cursor: this.#cursor });
    this.#cursor = page.nextCursor;
    this.set((v) => {
      const all = appendNew(v.conversations, page.conversations, (x) => x.conversationId) ?? v.conversations;
      const conversations = sorted(all).slice(0, MAX_CONVERSATIONS);
      return { ...v, conversations, hasMore: page.nextCursor !== undefined && conversations.length < MAX_CONVERSATIONS };
    });
  }

  refresh(): Promise<void> {
    return this.load();
  }

  /** A conversation view moved your read marker (its MARK_READ is sent there). */
  markedRead(conversationId: string, seq: number): void {
    const current = this.snapshot.conversations.find((x) => x.conversationId === conversationId);
    if (!current || seq <= current.lastReadSeq) return;
    const counted = this.#counted.get(conversationId);
    if (counted) for (const s of [...counted.seqs]) if (s <= seq) counted.seqs.delete(s);
    const unreadCount = seq >= current.lastSeq ? 0 : Math.min(current.unreadCount, counted?.seqs.size ?? current.unreadCount);
    this.#upsert({ ...current, lastReadSeq: seq, unreadCount });
  }

  #upsert(summary: ConversationSummary): void {
    this.set((v) => ({
      ...v,
      conversations: sorted([summary, ...v.conversations.filter((x) => x.conversationId !== summary.conversationId)]).slice(0, MAX_CONVERSATIONS),
    }));
  }
}

function sorted(list: readonly ConversationSummary[]): ConversationSummary[] {
  return [...list].sort((a, b) => (a.lastActivity < b.lastActivity ? 1 : a.lastActivity > b.lastActivity ? -1 : 0));
}

export interface UseConversations extends ConversationsView {
  loadMore(): Promise<void>;
  refresh(): Promise<void>;
  create(conversation: Omit<RequestOf<"CREATE_CONVERSATION">, "type">): Promise<Ack>;
  join(conversationId: string): Promise<Ack>;
}

/** Your conversations, live (the first {@link PAGE}, then `loadMore`). */
export function useConversations(): UseConversations {
  const client = useMessagingClient();
  const { state, store } = useLiveStore("conversations", (c) => new ConversationsStore(c));
  return useMemo(() => {
    return {
      ...state,
      loadMore: () => store.loadMore(),
      refresh: () => store.refresh(),
      create: async (conversation) => {
        const ack = await client.createConversation(conversation);
        await store.refresh();
        return ack;
      },
      join: async (conversationId) => {
        const ack = await client.joinConversation(conversationId);
        await store.refresh();
        return ack;
      },
    };
  }, [state, store, client]);
}
