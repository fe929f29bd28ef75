/** The claims the client reads from its own token (never verified here: the server does that). */
export interface TokenClaims {
  sub?: string;
  name?: string;
  clientId?: string;
  role?: string;
  /** Epoch seconds. */
  exp?: number;
}

/** The payload of a JWT, or `undefined` when `token` is not one. */
export function readClaims(token: string): TokenClaims | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return claims !== null && typeof claims === "object" ? (claims as TokenClaims) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `claims` expire within `marginMs` of `now` (a token without `exp` never does, as far as the client knows). */
export function expiresWithin(claims: TokenClaims | undefined, now: number, marginMs: number): boolean {
  return typeof claims?.exp === "number" && claims.exp * 1000 <= now + marginMs;
}

/** `url` with `token` in its query string, as API Gateway's WebSocket handshake expects. */
export function withToken(url: string, token: string): string {
  return `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}
