/**
 * What the client learns from its surroundings: whether the page is visible (the presence
 * heartbeat runs while it is; a tab coming back retries a connection at once) and when the
 * network comes back. The browser's by default; always visible and silent elsewhere.
 */
export interface Environment {
  visible(): boolean;
  /** Calls `listener` when visibility changes; returns the function that stops it. */
  onVisibilityChange(listener: (visible: boolean) => void): () => void;
  /** Calls `listener` when the platform reports the network back; returns the function that stops it. */
  onOnline(listener: () => void): () => void;
}

interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

export function defaultEnvironment(): Environment {
  const doc = (globalThis as { document?: EventTargetLike & { visibilityState?: string } }).document;
  const win = (globalThis as { window?: EventTargetLike }).window;
  return {
    visible: () => doc?.visibilityState !== "hidden",
    onVisibilityChange(listener) {
      if (!doc) return () => {};
      const handler = () => listener(doc.visibilityState !== "hidden");
      doc.addEventListener("visibilitychange", handler);
      return () => doc.removeEventListener("visibilitychange", handler);
    },
    onOnline(listener) {
      if (!win) return () => {};
      win.addEventListener("online", listener);
      return () => win.removeEventListener("online", listener);
    },
  };
}
