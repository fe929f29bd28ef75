// The wire protocol (docs/protocol.md; the contract is docs/asyncapi.yaml): every frame a client
// sends and every frame the server sends, as TypeScript types.

/** API Gateway's largest client frame: 32 KB. A frame over it is refused before it is sent. */
export const MAX_FRAME_BYTES = 32 * 1024;

/** The user id of the messages that fill a `seq` a send gave up: never a real sender. */
export const SYSTEM_USER = "stackpro.system";

export type Role = "OWNER" | "ADMIN" | "USER";
export type PresenceStatus = "online" | "away" | "offline";
export type ConversationKind = "general" | "project" | "file";

export type ErrorCode =
  | "INVALID_JSON"
  | "MISSING_TYPE"
  | "UNKNOWN_TYPE"
  | "INVALID_FIELD"
  | "MESSAGE_TOO_LARGE"
  | "CROSS_TENANT"
  | "CONVERSATION_NOT_FOUND"
  | "CONVERSATION_EXISTS"
  | "MESSAGE_NOT_FOUND"
  | "INVALID_CURSOR"
  | "FILE_NOT_FOUND"
  | "FILE_EXISTS"
  | "SHARE_NOT_FOUND"
  | "COMMENT_NOT_FOUND"
  | "PREVIEW_NOT_AVAILABLE"
  | "NOT_A_MEMBER"
  | "FORBIDDEN"
  | "UNKNOWN_CONNECTION"
  | "UNAUTHORIZED"
  | "NOT_FOUND"
  | "THROTTLED"
  | "IDEMPOTENCY_KEY_REUSED"
  | "IDEMPOTENCY_KEY_IN_USE"
  | "UNAVAILABLE"
  | "INTERNAL";

// ---- Shared shapes -------------------------------------------------------------------------

export interface MessageContent {
  text: string;
  type: "text" | "file" | "image" | "system";
  attachments?: Attachment[];
}

/** A file a message carries, as it was when posted: never a URL (`getDownloadUrl` gives one). */
export interface Attachment {
  fileId: string;
  name: string;
  size: number;
  mimeType: string;
  /** An image's size, when known as it was posted. */
  width?: number;
  height?: number;
  /** The image had a preview when posted (`getDownloadUrl(id, { variant: "preview" })`). */
  preview?: boolean;
}

/** What a send carries: text, or files (`file`, `image`) with an optional caption. */
export interface OutgoingContent {
  text: string;
  type?: "text" | "file" | "image";
  attachments?: AttachmentRef[];
}

/** A registered file to post: its members may read it, and download it when `download`. */
export interface AttachmentRef {
  fileId: string;
  download?: boolean;
}

export interface Message {
  conversationId: string;
  messageId: string;
  seq: number;
  senderId: string;
  senderName?: string;
  content: MessageContent;
  /** RFC 3339 UTC. */
  timestamp: string;
  edited: boolean;
  editedAt?: string;
  deleted?: boolean;
  reactions: Record<string, string[]>;
  threadCount: number;
  parentSeq?: number;
  clientMessageId?: string;
}

export interface Conversation {
  conversationId: string;
  channel: string;
  kind: ConversationKind;
  title?: string;
  createdBy: string;
  createdAt: string;
  lastActivity: string;
  lastSeq: number;
}

export interface ConversationSummary extends Conversation {
  lastReadSeq: number;
  /** Counted up to 100: show "100+". */
  unreadCount: number;
}

export interface MemberPresence {
  userId: string;
  status: PresenceStatus;
}

export interface FilePermissions {
  read: boolean;
  comment: boolean;
  edit: boolean;
  download: boolean;
}

export interface FileView {
  fileId: string;
  name: string;
  size: number;
  mimeType: string;
  owner: string;
  createdAt: string;
  channel: string;
  /** An image's size and preview, once its upload was looked at (absent before, and for other files). */
  image?: ImageInfo;
  [more: string]: unknown;
}

/** What the upload of an image gave: its size and a preview, or why there is none. */
export interface ImageInfo {
  preview: "ready" | "refused";
  width?: number;
  height?: number;
  reason?: string;
}

export interface FileEntry extends FileView {
  permissions: FilePermissions;
}

export interface PresignedUrl {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** Epoch milliseconds. */
  expiresAt: number;
}

export interface CommentPosition {
  page?: number;
  x: number;
  y: number;
}

export interface FileComment {
  fileId: string;
  commentId: string;
  author: string;
  content: string;
  position?: CommentPosition;
  parentCommentId?: string;
  timestamp: string;
  [more: string]: unknown;
}

export interface Notification {
  notificationId: string;
  kind: "NEW_MESSAGE" | "MENTION" | "FILE_SHARED" | "FILE_COMMENT";
  text: string;
  data: Record<string, unknown>;
  createdAt: string;
  read: boolean;
}

export interface QuietHours {
  startMinute: number;
  endMinute: number;
  utcOffsetMinutes: number;
}

export interface Preferences {
  inApp?: boolean;
  email?: boolean;
  push?: boolean;
  sms?: boolean;
  pushEndpoint?: string;
  quietHours?: QuietHours;
  emailAddress?: string;
  phoneNumber?: string;
  [more: string]: unknown;
}

// ---- Client → server -----------------------------------------------------------------------

/** Names a conversation by id, by channel, or both (they must agree). */
export type ConversationTarget = { conversationId: string; channel?: string } | { channel: string; conversationId?: string };

export type ClientFrame =
  | ({
      type: "CHAT_MESSAGE";
      clientMessageId?: string;
      parentSeq?: number;
      content: OutgoingContent;
    } & ConversationTarget)
  | ({ type: "EDIT_MESSAGE"; seq: number; content: { text: string; type?: MessageContent["type"] } } & ConversationTarget)
  | ({ type: "DELETE_MESSAGE"; seq: number } & ConversationTarget)
  | ({ type: "ADD_REACTION"; seq: number; emoji: string } & ConversationTarget)
  | ({ type: "REMOVE_REACTION"; seq: number; emoji: string } & ConversationTarget)
  | ({ type: "TYPING_START" } & ConversationTarget)
  | ({ type: "TYPING_STOP" } & ConversationTarget)
  | { type: "CREATE_CONVERSATION"; conversationId: string; kind: ConversationKind; title?: string; members?: string[] }
  | ({ type: "JOIN_CONVERSATION" } & ConversationTarget)
  | ({ type: "ADD_MEMBERS"; members: string[] } & ConversationTarget)
  | ({ type: "REMOVE_MEMBER"; userId: string } & ConversationTarget)
  | { type: "LIST_CONVERSATIONS"; limit?: number; cursor?: string }
  | ({ type: "GET_HISTORY"; limit?: number; cursor?: string; sinceSeq?: number } & ConversationTarget)
  | ({ type: "GET_THREAD"; seq: number; limit?: number; cursor?: string } & ConversationTarget)
  | { type: "SEARCH"; query: string; limit?: number; cursor?: string }
  | ({ type: "MARK_READ"; seq: number } & ConversationTarget)
  | { type: "SET_PRESENCE"; status: "online" | "away" }
  | ({ type: "GET_PRESENCE"; limit?: number; cursor?: string } & ConversationTarget)
  | { type: "LIST_NOTIFICATIONS"; limit?: number; cursor?: string }
  | { type: "MARK_NOTIFICATIONS_READ"; notificationIds?: string[]; all?: boolean }
  | { type: "GET_PREFERENCES" }
  | { type: "SET_PREFERENCES"; preferences: Preferences }
  | { type: "PING" }
  | { type: "REGISTER_FILE"; fileId?: string; name: string; size: number; mimeType: string }
  | { type: "SHARE_FILE"; fileId: string; userId: string; permissions: Partial<FilePermissions> }
  | { type: "REVOKE_FILE_SHARE"; fileId: string; userId: string }
  | { type: "LIST_FILES"; limit?: number; cursor?: string }
  | { type: "GET_FILE"; fileId: string }
  | { type: "FILE_COMMENT"; fileId: string; content: string; position?: CommentPosition; parentCommentId?: string }
  | { type: "LIST_FILE_COMMENTS"; fileId: string; limit?: number; cursor?: string }
  | { type: "GET_DOWNLOAD_URL"; fileId: string; variant?: "original" | "preview" }
  | { type: "GET_UPLOAD_URL"; fileId: string; size: number };

export type ClientFrameType = ClientFrame["type"];

// ---- Server → client -----------------------------------------------------------------------

export interface Ack {
  type: "ACK";
  requestId?: string;
  action: string;
  conversationId?: string;
  fileId?: string;
  /** FILE_COMMENT: the stored comment (your own connection is not sent its FILE_COMMENT). */
  commentId?: string;
  messageId?: string;
  seq?: number;
  timestamp?: string;
  duplicate?: boolean;
}

export interface ErrorFrame {
  type: "ERROR";
  requestId?: string;
  code: ErrorCode;
  message: string;
  retryable: boolean;
  retryAfterMs?: number;
}

type Paged = { requestId?: string; nextCursor?: string };

export type ServerFrame =
  | Ack
  | ErrorFrame
  | { type: "NEW_MESSAGE"; data: Message }
  | { type: "THREAD_REPLY"; data: Message; threadCount: number }
  | { type: "MESSAGE_EDITED"; data: Message }
  | { type: "MESSAGE_DELETED"; conversationId: string; seq: number; messageId: string; deletedBy: string }
  | { type: "REACTIONS_CHANGED"; conversationId: string; seq: number; messageId: string; reactions: Record<string, string[]> }
  | { type: "TYPING_START"; conversationId: string; userId: string; expiresAt: number }
  | { type: "TYPING_STOP"; conversationId: string; userId: string }
  | { type: "MEMBER_JOINED"; conversationId: string; userId: string }
  | { type: "MEMBER_REMOVED"; conversationId: string; userId: string; removedBy: string }
  | { type: "READ_RECEIPT"; conversationId: string; userId: string; seq: number }
  | { type: "CONVERSATION_CREATED"; conversation: Conversation }
  | ({ type: "CONVERSATIONS"; conversations: ConversationSummary[] } & Paged)
  | ({
      type: "HISTORY";
      conversationId: string;
      order: "newestFirst" | "oldestFirst";
      messages: Message[];
      members: MemberPresence[];
      moreMembers?: boolean;
    } & Paged)
  | ({ type: "THREAD"; conversationId: string; parent: Message; replies: Message[] } & Paged)
  | ({ type: "SEARCH_RESULTS"; query: string; results: Message[] } & Paged)
  | ({ type: "PRESENCE_LIST"; conversationId: string; members: MemberPresence[] } & Paged)
  | { type: "PRESENCE"; userId: string; status: PresenceStatus }
  | { type: "FILE"; requestId?: string; file: FileView; permissions: FilePermissions; upload?: PresignedUrl }
  | ({ type: "FILES"; files: FileEntry[] } & Paged)
  | { type: "FILE_SHARED"; file: FileView; sharedBy: string; permissions: FilePermissions }
  | { type: "FILE_SHARE_REVOKED"; fileId: string; userId: string }
  | { type: "FILE_COMMENT"; comment: FileComment }
  | ({ type: "FILE_COMMENTS"; fileId: string; comments: FileComment[] } & Paged)
  | { type: "NOTIFICATION"; notification: Notification }
  | { type: "NOTIFICATIONS"; requestId?: string; notifications: Notification[]; unread: number }
  | { type: "PREFERENCES"; requestId?: string; preferences: Preferences }
  | ({ type: "FILE_URL"; requestId?: string; fileId: string } & PresignedUrl);

/**
 * Several events for one connection in one frame (docs/protocol.md, "BATCH"): the server sends
 * events of a conversation that waited together in its broadcast queue this way, in their
 * order. The client applies each as if it had come alone; a BATCH is never nested.
 */
export interface BatchFrame {
  type: "BATCH";
  events: ServerFrame[];
}

export type ServerFrameType = ServerFrame["type"];
export type ServerFrameOf<T extends ServerFrameType> = Extract<ServerFrame, { type: T }>;

/** What each request is answered with when it succeeds. */
export interface Answers {
  CHAT_MESSAGE: Ack;
  EDIT_MESSAGE: Ack;
  DELETE_MESSAGE: Ack;
  ADD_REACTION: Ack;
  REMOVE_REACTION: Ack;
  CREATE_CONVERSATION: Ack;
  JOIN_CONVERSATION: Ack;
  ADD_MEMBERS: Ack;
  REMOVE_MEMBER: Ack;
  LIST_CONVERSATIONS: ServerFrameOf<"CONVERSATIONS">;
  GET_HISTORY: ServerFrameOf<"HISTORY">;
  GET_THREAD: ServerFrameOf<"THREAD">;
  SEARCH: ServerFrameOf<"SEARCH_RESULTS">;
  MARK_READ: Ack;
  SET_PRESENCE: Ack;
  GET_PRESENCE: ServerFrameOf<"PRESENCE_LIST">;
  LIST_NOTIFICATIONS: ServerFrameOf<"NOTIFICATIONS">;
  MARK_NOTIFICATIONS_READ: Ack;
  GET_PREFERENCES: ServerFrameOf<"PREFERENCES">;
  SET_PREFERENCES: ServerFrameOf<"PREFERENCES">;
  PING: Ack;
  REGISTER_FILE: ServerFrameOf<"FILE">;
  SHARE_FILE: Ack;
  REVOKE_FILE_SHARE: Ack;
  LIST_FILES: ServerFrameOf<"FILES">;
  GET_FILE: ServerFrameOf<"FILE">;
  FILE_COMMENT: Ack;
  LIST_FILE_COMMENTS: ServerFrameOf<"FILE_COMMENTS">;
  GET_DOWNLOAD_URL: ServerFrameOf<"FILE_URL">;
  GET_UPLOAD_URL: ServerFrameOf<"FILE_URL">;
  TYPING_START: never;
  TYPING_STOP: never;
}

/** A request frame (one the server answers), without its `requestId`. */
export type RequestFrame = Exclude<ClientFrame, { type: "TYPING_START" | "TYPING_STOP" }>;
export type RequestType = RequestFrame["type"];
export type RequestOf<T extends RequestType> = Extract<RequestFrame, { type: T }>;

/** Reads: safe to send again on a new connection after the first was lost unanswered. */
export const IDEMPOTENT_REQUESTS: ReadonlySet<ClientFrameType> = new Set<ClientFrameType>([
  "LIST_CONVERSATIONS",
  "GET_HISTORY",
  "GET_THREAD",
  "SEARCH",
  "GET_PRESENCE",
  "LIST_NOTIFICATIONS",
  "GET_PREFERENCES",
  "PING",
  "LIST_FILES",
  "GET_FILE",
  "LIST_FILE_COMMENTS",
  "GET_DOWNLOAD_URL",
  "GET_UPLOAD_URL",
  "SET_PRESENCE",
  "MARK_READ",
  "MARK_NOTIFICATIONS_READ",
  "ADD_REACTION",
  "REMOVE_REACTION",
  "JOIN_CONVERSATION",
]);

/** The size of `frame` on the wire: UTF-8 bytes of its JSON. */
export function frameBytes(json: string): number {
  return new TextEncoder().encode(json).length;
}
