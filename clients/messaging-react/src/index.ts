export { MessagingProvider, useMessagingClient, useLiveStore, type MessagingProviderProps } from "./context.js";
export { useConnectionState, type ConnectionView } from "./connection.js";
export {
  useConversation,
  useThread,
  ConversationStore,
  ThreadStore,
  MAX_MESSAGES,
  UNREAD_CAP,
  type ConversationView,
  type UseConversation,
  type ThreadView,
  type UseThread,
} from "./conversation.js";
export { useConversations, ConversationsStore, type ConversationsView, type UseConversations } from "./conversations.js";
export { usePresence, PresenceStore, type PresenceView, type UsePresence } from "./presence.js";
export { useNotifications, NotificationsStore, MAX_NOTIFICATIONS, type NotificationsView, type UseNotifications } from "./notifications.js";
export {
  useFiles,
  useFileComments,
  FilesStore,
  FileCommentsStore,
  MAX_FILES,
  MAX_COMMENTS,
  type FilesView,
  type UseFiles,
  type UploadSource,
  type FileCommentsView,
  type UseFileComments,
} from "./files.js";
export { LiveStore } from "./store.js";
