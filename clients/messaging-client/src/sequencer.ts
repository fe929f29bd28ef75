import { SYSTEM_USER, type Message } from "./protocol.js";

/** What accepting messages produced: the ones to deliver now, in `seq` order. */
export interface Released {
  messages: Message[];
}

/** Messages held while an earlier `seq` is missing. Past this, the oldest are dropped: a catch-up refetches them. */
export const MAX_HELD = 1_000;

/**
 * One conversation's order: delivers every `seq` once, in order, whatever order and however
 * many times the messages arrive (live, replayed by a catch-up, from two sockets during a
 * hand-off). Voids (a `seq` a send gave up, a tombstone by {@link SYSTEM_USER}) fill their place
 * without being delivered.
 */
export class Sequencer {
  /** Every `seq` up to this one has been delivered (or was a void or a declared gap). */
  #through: number | undefined;
  #held = new Map<number, Message>();

  constructor(through?: number) {
    this.#through = through;
  }

  get through(): number | undefined {
    return this.#through;
  }

  /** Whether messages wait behind a missing `seq`. */
  get waiting(): boolean {
    return this.#held.size > 0;
  }

  /** The lowest `seq` held, if any. */
  get firstHeld(): number | undefined {
    let first: number | undefined;
    for (const seq of this.#held.keys()) if (first === undefined || seq < first) first = seq;
    return first;
  }

  /** Sets where delivery starts (the newest `seq` the application already has), releasing what follows. */
  start(through: number): Message[] {
    if (this.#through !== undefined && this.#through >= through) return this.#drain();
    this.#through = through;
    for (const seq of [...this.#held.keys()]) if (seq <= through) this.#held.delete(seq);
    return this.#drain();
  }

  /** Accepts one message; returns the messages now deliverable in order (maybe none). */
  accept(message: Message): Message[] {
    const seq = message.seq;
    if (!Number.isSafeInteger(seq) || seq < 1) return [];
    if (this.#through !== undefined && seq <= this.#through) return [];
    if (!this.#held.has(seq)) {
      this.#held.set(seq, message);
      if (this.#held.size > MAX_HELD) {
        let last = -1;
        for (const s of this.#held.keys()) last = Math.max(last, s);
        this.#held.delete(last);
      }
    }
    return this.#through === undefined ? [] : this.#drain();
  }

  /** Gives up on every `seq` before `seq` (history no longer has them): returns the gap and what follows it. */
  skipTo(seq: number): { gap: { fromSeq: number; toSeq: number } | undefined; messages: Message[] } {
    const from = (this.#through ?? 0) + 1;
    if (seq <= from) return { gap: undefined, messages: this.#drain() };
    this.#through = seq - 1;
    for (const s of [...this.#held.keys()]) if (s <= this.#through) this.#held.delete(s);
    return { gap: { fromSeq: from, toSeq: seq - 1 }, messages: this.#drain() };
  }

  #drain(): Message[] {
    const out: Message[] = [];
    if (this.#through === undefined) return out;
    for (;;) {
      const next = this.#held.get(this.#through + 1);
      if (!next) break;
      this.#held.delete(next.seq);
      this.#through = next.seq;
      if (!isVoid(next)) out.push(next);
    }
    return out;
  }
}

/** A `seq` a send gave up: never shown. */
export function isVoid(message: Message): boolean {
  return message.senderId === SYSTEM_USER && message.deleted === true;
}
