export { MessagingClient, type ClientOptions, type ClientEvents, type ConnectionState, type StateChange } from "./client.js";
export {
  ConversationHandle,
  type ConversationEvents,
  type MessageUpdate,
  type OpenResult,
  type PendingMessage,
} from "./conversation.js";
export { MessagingError, type ClientErrorCode } from "./errors.js";
export { MemoryOutboxStorage, OUTBOX_MAX_AGE_MS, type OutboxEntry, type OutboxStorage } from "./outbox.js";
export { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
export { systemClock, type Clock } from "./clock.js";
export { defaultEnvironment, type Environment } from "./environment.js";
export type { SocketFactory, SocketLike } from "./socket.js";
export { DEFAULT_TYPING, type TypingOptions } from "./typing.js";
export { Sequencer } from "./sequencer.js";
export * from "./protocol.js";
