// A DOM (happy-dom), React's act(), and a client on the scripted socket and clock of the client's
// own unit tests (clients/messaging-client/test/fakes.ts).
import { Window } from "happy-dom";

const window = new Window({ url: "http://localhost/" });
const g = globalThis as Record<string, unknown>;
for (const name of ["window", "document", "navigator", "HTMLElement", "Node", "Element", "Text", "Event", "MutationObserver"]) {
  if (g[name] === undefined || name === "window" || name === "document") g[name] = (window as unknown as Record<string, unknown>)[name];
}
g.IS_REACT_ACT_ENVIRONMENT = true;

import { act, type ReactElement } from "react";
import { createRoot, type Root } from "react-dom/client";
import { MessagingClient, type ClientOptions } from "@stackpro/messaging-client";
import { FakeClock, FakeEnvironment, FakeServer, FakeSockets, settle, token, type FakeSocket, type Frame } from "../../messaging-client/test/fakes.js";

export interface Harness {
  clock: FakeClock;
  sockets: FakeSockets;
  server: FakeServer;
  /** Answers for frame types the fake server does not know (return true when handled). */
  extra: ((frame: Frame, socket: FakeSocket) => boolean)[];
  client: MessagingClient;
  /** Opens the newest socket (the handshake succeeds) and lets everything settle. */
  open(): Promise<void>;
}

export function setup(overrides: Partial<ClientOptions> = {}): Harness {
  const clock = new FakeClock();
  const sockets = new FakeSockets();
  const server = new FakeServer();
  const extra: Harness["extra"] = [];
  sockets.server = (frame, socket) => {
    for (const answer of extra) if (answer(frame, socket)) return;
    server.handle(frame, socket);
  };
  let ids = 0;
  const client = new MessagingClient({
    url: "wss://example.test/prod",
    getToken: () => token({ sub: "alice", name: "Alice", exp: Math.floor(clock.now() / 1000) + 3600 }),
    socket: sockets.factory,
    clock,
    environment: new FakeEnvironment(),
    random: () => 0.5,
    presenceHeartbeatMs: false,
    newId: () => `c${++ids}`,
    ...overrides,
  });
  return {
    clock,
    sockets,
    server,
    extra,
    client,
    async open() {
      await flush();
      await act(async () => {
        sockets.last.open();
        await settle();
      });
      await flush();
    },
  };
}

/** Lets the client, React and the stores' deferred releases run. */
export async function flush(): Promise<void> {
  await act(async () => {
    for (let i = 0; i < 5; i++) await settle();
    await new Promise((resolve) => setTimeout(resolve, 0));
    await settle();
  });
}

export interface Rendered {
  root: Root;
  rerender(element: ReactElement): Promise<void>;
  unmount(): Promise<void>;
}

export async function render(element: ReactElement): Promise<Rendered> {
  const container = window.document.createElement("div");
  const errors: unknown[] = [];
  const root = createRoot(container as unknown as HTMLElement, {
    onUncaughtError: (error) => errors.push(error),
    onCaughtError: (error) => errors.push(error),
  });
  await act(async () => root.render(element));
  await flush();
  // A component that threw must fail the test, not leave it waiting for a render that never came.
  if (errors.length > 0) throw errors[0];
  return {
    root,
    async rerender(next) {
      await act(async () => root.render(next));
      await flush();
    },
    async unmount() {
      await act(async () => root.unmount());
      await flush();
    },
  };
}

/** Runs `fn` inside act() and lets everything settle. */
export async function step(fn: () => unknown): Promise<void> {
  await act(async () => {
    await fn();
    await settle();
  });
  await flush();
}
