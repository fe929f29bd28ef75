/** How reconnects are spaced. */
export interface BackoffOptions {
  /** The first retry's ceiling (ms). Default 1,000. */
  initialDelayMs: number;
  /** No retry waits longer than this (ms). Default 30,000. */
  maxDelayMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialDelayMs: 1_000, maxDelayMs: 30_000 };

/**
 * Exponential backoff with full jitter: attempt n (from 0) waits a uniformly random time in
 * [0, min(max, initial · 2^n)). Full jitter spreads a crowd of clients that lost the same server
 * at the same moment over the whole window, instead of bringing them back in waves.
 */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number): number {
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
