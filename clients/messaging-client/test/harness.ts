import { MessagingClient, type ClientOptions, type StateChange } from "../src/client.js";
import { FakeClock, FakeEnvironment, FakeServer, FakeSockets, settle, token } from "./fakes.js";

export interface Harness {
  clock: FakeClock;
  sockets: FakeSockets;
  server: FakeServer;
  env: FakeEnvironment;
  client: MessagingClient;
  states: StateChange[];
  /** The next value `random()` returns. */
  rnd: { value: number };
  tokens: string[];
  /** Connects and opens the socket the server answers on. */
  connected(): Promise<void>;
}

export function setup(overrides: Partial<ClientOptions> = {}): Harness {
  const clock = new FakeClock();
  const sockets = new FakeSockets();
  const server = new FakeServer();
  sockets.server = server.handle;
  const env = new FakeEnvironment();
  const tokens: string[] = [];
  const rnd = { value: 0.5 };
  let ids = 0;
  const client = new MessagingClient({
    url: "wss://example.test/prod",
    getToken: () => {
      const t = token({ sub: "alice", name: "Alice", exp: Math.floor(clock.now() / 1000) + 3600, n: tokens.length + 1 });
      tokens.push(t);
      return t;
    },
    socket: sockets.factory,
    clock,
    environment: env,
    random: () => rnd.value,
    presenceHeartbeatMs: false,
    newId: () => `c${++ids}`,
    ...overrides,
  });
  const states: StateChange[] = [];
  client.on("state", (s) => states.push(s));
  return {
    clock,
    sockets,
    server,
    env,
    client,
    states,
    rnd,
    tokens,
    async connected() {
      await client.connect();
      await settle();
      sockets.last.open();
      await settle();
    },
  };
}
