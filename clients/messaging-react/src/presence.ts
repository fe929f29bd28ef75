import { useMemo } from "react";
import type { MemberPresence, MessagingClient, MessagingError, PresenceStatus } from "@stackpro/messaging-client";
import { useLiveStore } from "./context.js";
import { asError } from "./conversation.js";
import { LiveStore } from "./store.js";

/** Members whose presence one view follows (GET_PRESENCE's first page). */
const PRESENCE_PAGE = 100;

export interface PresenceView {
  status: "loading" | "ready" | "error";
  /** Members and their status (the first 100; `more` when the conversation has others). */
  members: readonly MemberPresence[];
  more: boolean;
  error: MessagingError | undefined;
}

/** Who of a conversation is online, away or offline, kept live by PRESENCE and membership frames. */
export class PresenceStore extends LiveStore<PresenceView> {
  readonly conversationId: string;

  constructor(client: MessagingClient, conversationId: string) {
    super(client, { status: "loading", members: [], more: false, error: undefined });
    this.conversationId = conversationId;
  }

  protected listen(): (() => void)[] {
    const c = this.client;
    return [
      c.on("presence", ({ userId, status }) => {
        this.set((v) => {
          if (!v.members.some((m) => m.userId === userId && m.status !== status)) return v;
          return { ...v, members: v.members.map((m) => (m.userId === userId ? { userId, status } : m)) };
        });
      }),
      // A new member's status is the server's to say.
      c.onFrame("MEMBER_JOINED", ({ conversationId }) => {
        if (conversationId === this.conversationId) void this.load();
      }),
      c.onFrame("MEMBER_REMOVED", ({ conversationId, userId }) => {
        if (conversationId !== this.conversationId) return;
        this.set((v) => ({ ...v, members: v.members.filter((m) => m.userId !== userId) }));
      }),
    ];
  }

  protected async load(): Promise<void> {
    try {
      const page = await this.client.getPresence(this.conversationId, { limit: PRESENCE_PAGE });
      this.set({ status: "ready", members: page.members, more: page.nextCursor !== undefined, error: undefined });
    } catch (error) {
      this.set((v) => ({ ...v, status: "error", error: asError(error) }));
    }
  }
}

export interface UsePresence extends PresenceView {
  /** A member's status (`offline` for anyone not listed). */
  statusOf(userId: string): PresenceStatus;
}

/** The members of a conversation and their presence, live. Your own is sent by the client (a heartbeat while the page is visible). */
export function usePresence(conversationId: string): UsePresence {
  const { state } = useLiveStore(`presence:${conversationId}`, (client) => new PresenceStore(client, conversationId));
  return useMemo(
    () => ({ ...state, statusOf: (userId: string) => state.members.find((m) => m.userId === userId)?.status ?? "offline" }),
    [state],
  );
}
