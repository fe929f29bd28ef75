/**
 * The part of a WebSocket the client uses: the browser's `WebSocket` and Node's (20+, global
 * from 22; `--experimental-websocket` on 20) both fit, and so does a test's scripted socket.
 */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** Opens a socket to `url` (the token already in its query string). */
export type SocketFactory = (url: string) => SocketLike;

export const OPEN = 1;

/** The platform's WebSocket, or a clear error where there is none. */
export function defaultSocketFactory(): SocketFactory {
  const Ctor = (globalThis as { WebSocket?: new (url: string) => SocketLike }).WebSocket;
  if (!Ctor) {
    throw new Error(
      "no WebSocket in this runtime: pass `socket: (url) => new WebSocket(url)` with an implementation (Node 20: run with --experimental-websocket, or Node 22+)",
    );
  }
  return (url) => new Ctor(url);
}
