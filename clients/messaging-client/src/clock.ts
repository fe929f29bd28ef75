/** Time as the client sees it: the real one by default, a scripted one in tests. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as ReturnType<typeof globalThis.setTimeout>),
};

/** One pending callback of a [`Clock`], cancellable, re-armable. */
export class Timer {
  #clock: Clock;
  #handle: unknown = undefined;
  #due: number | undefined = undefined;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Runs `callback` after `ms`, replacing whatever was pending. */
  start(ms: number, callback: () => void): void {
    this.stop();
    this.#due = this.#clock.now() + ms;
    this.#handle = this.#clock.setTimeout(() => {
      this.#handle = undefined;
      this.#due = undefined;
      callback();
    }, ms);
  }

  stop(): void {
    if (this.#handle !== undefined) this.#clock.clearTimeout(this.#handle);
    this.#handle = undefined;
    this.#due = undefined;
  }

  get pending(): boolean {
    return this.#handle !== undefined;
  }

  /** When the pending callback runs (epoch ms), if one is pending. */
  get due(): number | undefined {
    return this.#due;
  }
}
