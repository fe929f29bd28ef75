import type { ErrorCode, ErrorFrame } from "./protocol.js";

/** Codes the client itself produces, beside the server's. */
export type ClientErrorCode =
  | ErrorCode
  /** The frame is over 32 KB: refused before it was sent. */
  | "FRAME_TOO_LARGE"
  /** No answer within the request timeout. */
  | "TIMEOUT"
  /** The connection was lost before the answer came (a write that may or may not have happened). */
  | "DISCONNECTED"
  /** The client was closed, or failed, with the request outstanding. */
  | "CLOSED"
  /** An outbox entry older than the server's 24-hour idempotency window: resending could store it twice. */
  | "EXPIRED";

/** Every failure the client reports: a server ERROR frame or one of the client's own. */
export class MessagingError extends Error {
  readonly code: ClientErrorCode;
  /** The same request may be sent again. */
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  readonly requestId: string | undefined;

  constructor(code: ClientErrorCode, message: string, options: { retryable?: boolean; retryAfterMs?: number; requestId?: string } = {}) {
    super(message);
    this.name = "MessagingError";
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
    this.requestId = options.requestId;
  }

  static fromFrame(frame: ErrorFrame): MessagingError {
    return new MessagingError(frame.code, frame.message, {
      retryable: frame.retryable,
      ...(frame.retryAfterMs === undefined ? {} : { retryAfterMs: frame.retryAfterMs }),
      ...(frame.requestId === undefined ? {} : { requestId: frame.requestId }),
    });
  }
}
