import { useSyncExternalStore } from "react";
import type { ConnectionState, MessagingClient, MessagingError, StateChange } from "@stackpro/messaging-client";
import { useMessagingClient } from "./context.js";

export interface ConnectionView {
  state: ConnectionState;
  /** Why the connection was lost or refused (the last change's reason). */
  reason: MessagingError | undefined;
  /** When `disconnected` or `suspended`: the wait before the next attempt, in ms. */
  retryInMs: number | undefined;
  /** The user the token names, once known. */
  userId: string | undefined;
}

interface Watcher {
  view: ConnectionView;
  subscribe: (listener: () => void) => () => void;
}

const watchers = new WeakMap<MessagingClient, Watcher>();

function watcher(client: MessagingClient): Watcher {
  let w = watchers.get(client);
  if (w) return w;
  const listeners = new Set<() => void>();
  const created: Watcher = {
    view: { state: client.state, reason: undefined, retryInMs: undefined, userId: client.userId },
    subscribe: (listener) => {
      listeners.add(listener);
      // Changes between the first render and this subscription are not missed.
      if (created.view.state !== client.state || created.view.userId !== client.userId) {
        created.view = { ...created.view, state: client.state, userId: client.userId };
        queueMicrotask(listener);
      }
      return () => listeners.delete(listener);
    },
  };
  client.on("state", (change: StateChange) => {
    created.view = { state: change.current, reason: change.reason, retryInMs: change.retryInMs, userId: client.userId };
    for (const listener of [...listeners]) listener();
  });
  watchers.set(client, created);
  return created;
}

/** The connection's state, re-rendering on every change (`connected`, `disconnected` with its retry, `failed` with its reason…). */
export function useConnectionState(): ConnectionView {
  const client = useMessagingClient();
  const w = watcher(client);
  return useSyncExternalStore(w.subscribe, () => w.view, () => w.view);
}
