import { Timer, type Clock } from "./clock.js";

export interface TypingOptions {
  /** At most one TYPING_START per this long while typing goes on (ms). Default 5,000: under the server's 10-s indicator life, so it stays lit. */
  throttleMs: number;
  /** A TYPING_STOP this long after the last keystroke (ms). Default 4,000. */
  idleMs: number;
}

export const DEFAULT_TYPING: TypingOptions = { throttleMs: 5_000, idleMs: 4_000 };

/**
 * The outgoing side: `keystroke()` on every input event costs at most one TYPING_START per
 * `throttleMs`, and a TYPING_STOP follows `idleMs` after the last one, or at once on `stop()`
 * (a send, leaving the conversation).
 */
export class TypingSender {
  #clock: Clock;
  #options: TypingOptions;
  #send: (type: "TYPING_START" | "TYPING_STOP") => void;
  #idle: Timer;
  #startedAt: number | undefined;

  constructor(clock: Clock, options: TypingOptions, send: (type: "TYPING_START" | "TYPING_STOP") => void) {
    this.#clock = clock;
    this.#options = options;
    this.#send = send;
    this.#idle = new Timer(clock);
  }

  get typing(): boolean {
    return this.#startedAt !== undefined;
  }

  keystroke(): void {
    const now = this.#clock.now();
    if (this.#startedAt === undefined || now - this.#startedAt >= this.#options.throttleMs) {
      this.#startedAt = now;
      this.#send("TYPING_START");
    }
    this.#idle.start(this.#options.idleMs, () => this.stop());
  }

  stop(): void {
    this.#idle.stop();
    if (this.#startedAt === undefined) return;
    this.#startedAt = undefined;
    this.#send("TYPING_STOP");
  }

  /** Forgets the state without sending (the connection that carried it is gone). */
  reset(): void {
    this.#idle.stop();
    this.#startedAt = undefined;
  }
}

/** The server's indicator life; an `expiresAt` further ahead than this is a clock apart from ours. */
export const TYPING_TTL_MS = 10_000;

/** The incoming side: who is typing, each until their TYPING_STOP, their message, or `expiresAt`. */
export class TypingTracker {
  #clock: Clock;
  #timers = new Map<string, Timer>();
  #changed: (users: string[]) => void;

  constructor(clock: Clock, changed: (users: string[]) => void) {
    this.#clock = clock;
    this.#changed = changed;
  }

  get users(): string[] {
    return [...this.#timers.keys()];
  }

  start(userId: string, expiresAt: number): void {
    let ms = expiresAt - this.#clock.now();
    // Our clock and the server's may disagree: an indicator is never shown longer than its
    // life, nor dropped at once because our clock runs ahead.
    if (!(ms > 0 && ms <= TYPING_TTL_MS)) ms = TYPING_TTL_MS;
    const known = this.#timers.has(userId);
    let timer = this.#timers.get(userId);
    if (!timer) {
      timer = new Timer(this.#clock);
      this.#timers.set(userId, timer);
    }
    timer.start(ms, () => this.stop(userId));
    if (!known) this.#changed(this.users);
  }

  stop(userId: string): void {
    const timer = this.#timers.get(userId);
    if (!timer) return;
    timer.stop();
    this.#timers.delete(userId);
    this.#changed(this.users);
  }

  clear(): void {
    for (const timer of this.#timers.values()) timer.stop();
    const had = this.#timers.size > 0;
    this.#timers.clear();
    if (had) this.#changed([]);
  }
}
