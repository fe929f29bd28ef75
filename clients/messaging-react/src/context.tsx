import { createContext, useContext, useEffect, useMemo, useSyncExternalStore, type ReactNode } from "react";
import type { MessagingClient } from "@stackpro/messaging-client";
import { release, retain, shared, type LiveStore } from "./store.js";

const MessagingContext = createContext<MessagingClient | null>(null);

export interface MessagingProviderProps {
  /** The client the hooks below use (create it once, outside render). */
  client: MessagingClient;
  /**
   * Connect on mount and close on unmount (default `true`). With `false` the application
   * calls `client.connect()` and `client.close()` itself.
   */
  connect?: boolean;
  children?: ReactNode;
}

const closing = new WeakMap<MessagingClient, ReturnType<typeof setTimeout>>();

/** Makes `client` available to the hooks of everything inside it. */
export function MessagingProvider({ client, connect = true, children }: MessagingProviderProps) {
  useEffect(() => {
    if (!connect) return undefined;
    // A remount in the same commit (StrictMode runs every effect twice) keeps the connection.
    const pending = closing.get(client);
    if (pending !== undefined) clearTimeout(pending);
    closing.delete(client);
    client.connect().catch(() => {
      // Reported through the `state` event (useConnectionState).
    });
    return () => {
      closing.set(
        client,
        setTimeout(() => {
          closing.delete(client);
          client.close();
        }, 0),
      );
    };
  }, [client, connect]);
  return <MessagingContext.Provider value={client}>{children}</MessagingContext.Provider>;
}

/** The client of the nearest {@link MessagingProvider}. */
export function useMessagingClient(): MessagingClient {
  const client = useContext(MessagingContext);
  if (!client) throw new Error("useMessagingClient: no <MessagingProvider client={…}> above this component");
  return client;
}

export type SnapshotOf<S> = S extends LiveStore<infer T> ? T : never;

/** Subscribes the component to the shared store `key` (created by `create` the first time). */
export function useLiveStore<S extends LiveStore<any>>(key: string, create: (client: MessagingClient) => S): { state: SnapshotOf<S>; store: S } {
  const client = useMessagingClient();
  // `create` is the same function for a key (each hook passes a constructor call).
  const store = useMemo(() => shared(client, key, () => create(client)), [client, key]);
  useEffect(() => {
    retain(client, key, store);
    return () => release(client, key, store);
  }, [client, key, store]);
  const state = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot) as SnapshotOf<S>;
  return { state, store };
}
