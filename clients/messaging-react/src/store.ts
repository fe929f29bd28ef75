import type { ConnectionState, MessagingClient } from "@stackpro/messaging-client";

/**
 * A live view kept up to date by the client: an immutable snapshot, replaced on every change
 * (what `useSyncExternalStore` needs), started when its first component mounts and stopped a
 * moment after its last one unmounts.
 */
export abstract class LiveStore<T> {
  #snapshot: T;
  #listeners = new Set<() => void>();
  #offs: (() => void)[] = [];
  #running = false;
  protected readonly client: MessagingClient;

  constructor(client: MessagingClient, initial: T) {
    this.client = client;
    this.#snapshot = initial;
  }

  readonly subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  readonly getSnapshot = (): T => this.#snapshot;

  get running(): boolean {
    return this.#running;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#offs = this.listen();
    // Loaded when connected: now, or on the next `connected` (and again after every reconnect,
    // when what changed while away is not known otherwise).
    this.#offs.push(
      this.client.on("state", ({ current, previous }) => {
        if (current === "connected" && previous !== "connected") this.#load();
      }),
    );
    if (this.client.state === "connected") this.#load();
  }

  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    for (const off of this.#offs.splice(0)) off();
    this.stopped();
  }

  protected get snapshot(): T {
    return this.#snapshot;
  }

  protected set(next: T | ((previous: T) => T)): void {
    const value = typeof next === "function" ? (next as (previous: T) => T)(this.#snapshot) : next;
    if (Object.is(value, this.#snapshot)) return;
    this.#snapshot = value;
    for (const listener of [...this.#listeners]) listener();
  }

  /** Subscribes to the client's events; returns the unsubscribers. */
  protected abstract listen(): (() => void)[];
  /** (Re)loads from the server: on start when connected, and after every reconnect. */
  protected abstract load(): Promise<void>;
  protected stopped(): void {}

  #load(): void {
    this.load().catch(() => {
      // Each store records its own failures in its snapshot.
    });
  }
}

/** What the registry needs of a store. */
interface Startable {
  start(): void;
  stop(): void;
}

/**
 * `list` with the items of `more` it does not hold yet (by `id`) after it, or `undefined` when
 * there are none: a page or a live item may repeat what a list already has.
 */
export function appendNew<T>(list: readonly T[], more: readonly T[], id: (item: T) => string): T[] | undefined {
  const known = new Set(list.map(id));
  const fresh = more.filter((item) => !known.has(id(item)));
  return fresh.length === 0 ? undefined : [...list, ...fresh];
}

interface Entry {
  store: Startable;
  users: number;
  release: ReturnType<typeof setTimeout> | undefined;
}

const registries = new WeakMap<MessagingClient, Map<string, Entry>>();

function registry(client: MessagingClient): Map<string, Entry> {
  let map = registries.get(client);
  if (!map) {
    map = new Map();
    registries.set(client, map);
  }
  return map;
}

/**
 * The one store of `key` for `client` (created if none): every component showing the same
 * conversation, file or list shares one subscription and one copy of its data.
 */
export function shared<S extends Startable>(client: MessagingClient, key: string, create: () => S): S {
  const map = registry(client);
  let entry = map.get(key);
  if (!entry) {
    entry = { store: create(), users: 0, release: undefined };
    map.set(key, entry);
  }
  return entry.store as S;
}

/** The store of `key` if one exists (another store's view of it, e.g. the conversation list's unread counts). */
export function peek<S extends Startable>(client: MessagingClient, key: string): S | undefined {
  return registries.get(client)?.get(key)?.store as S | undefined;
}

/** A component began to use the store: started if it was not. */
export function retain(client: MessagingClient, key: string, store: Startable): void {
  const map = registry(client);
  let entry = map.get(key);
  if (!entry || entry.store !== store) {
    entry = { store, users: 0, release: undefined };
    map.set(key, entry);
  }
  if (entry.release !== undefined) clearTimeout(entry.release);
  entry.release = undefined;
  entry.users++;
  store.start();
}

/**
 * A component stopped using the store. The last one out stops it after a tick, so a remount in
 * the same commit (React's StrictMode, a key change in a list) keeps the subscription and data.
 */
export function release(client: MessagingClient, key: string, store: Startable): void {
  const map = registries.get(client);
  const entry = map?.get(key);
  if (!map || !entry || entry.store !== store) {
    store.stop();
    return;
  }
  entry.users = Math.max(0, entry.users - 1);
  if (entry.users > 0) return;
  entry.release = setTimeout(() => {
    if (entry.users > 0) return;
    map.delete(key);
    store.stop();
  }, 0);
}

export type { ConnectionState };
