import type { ClientFrame } from "./protocol.js";

/** A CHAT_MESSAGE waiting for its ACK. `clientMessageId` makes resending it safe for 24 hours. */
export interface OutboxEntry {
  clientMessageId: string;
  conversationId: string;
  frame: Extract<ClientFrame, { type: "CHAT_MESSAGE" }>;
  /** When it was first sent (epoch ms): past the server's idempotency window it is never resent. */
  createdAt: number;
}

/**
 * Where unacknowledged sends are kept: memory by default (they survive reconnects), or any
 * storage that outlives the page (IndexedDB, localStorage, a file) so a reload resends them.
 * `load` is called once, when the client starts.
 */
export interface OutboxStorage {
  load(): Promise<OutboxEntry[]>;
  put(entry: OutboxEntry): Promise<void>;
  delete(clientMessageId: string): Promise<void>;
}

export class MemoryOutboxStorage implements OutboxStorage {
  readonly entries = new Map<string, OutboxEntry>();

  async load(): Promise<OutboxEntry[]> {
    return [...this.entries.values()];
  }

  async put(entry: OutboxEntry): Promise<void> {
    this.entries.set(entry.clientMessageId, entry);
  }

  async delete(clientMessageId: string): Promise<void> {
    this.entries.delete(clientMessageId);
  }
}

/** The server keeps a `clientMessageId` for 24 hours; an entry is resent only well inside that. */
export const OUTBOX_MAX_AGE_MS = 23 * 60 * 60 * 1000;
