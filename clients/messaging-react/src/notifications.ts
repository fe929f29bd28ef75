import { useMemo } from "react";
import type { MessagingClient, MessagingError, Notification } from "@stackpro/messaging-client";
import { useLiveStore } from "./context.js";
import { asError } from "./conversation.js";
import { LiveStore } from "./store.js";

/** The newest notifications listed (LIST_NOTIFICATIONS has no cursor: older ones are in the bell's history on the server). */
const PAGE = 50;
/** Notifications kept in memory, newest first. */
export const MAX_NOTIFICATIONS = 200;

export interface NotificationsView {
  status: "loading" | "ready" | "error";
  /** In-app notifications, newest first. */
  notifications: readonly Notification[];
  /** Unread, as the server counts them (plus those arrived since). */
  unread: number;
  error: MessagingError | undefined;
}

/** Your in-app notifications (the bell): listed, then live. */
export class NotificationsStore extends LiveStore<NotificationsView> {

  constructor(client: MessagingClient) {
    super(client, { status: "loading", notifications: [], unread: 0, error: undefined });
  }

  protected listen(): (() => void)[] {
    return [
      // The client passes each notification on once, however many sockets carried it.
      this.client.on("notification", (n) => {
        this.set((v) => {
          if (v.notifications.some((x) => x.notificationId === n.notificationId)) return v;
          return { ...v, notifications: [n, ...v.notifications].slice(0, MAX_NOTIFICATIONS), unread: v.unread + (n.read ? 0 : 1) };
        });
      }),
    ];
  }

  protected async load(): Promise<void> {
    try {
      const page = await this.client.listNotifications({ limit: PAGE });
      this.set({ status: "ready", notifications: page.notifications, unread: page.unread, error: undefined });
    } catch (error) {
      this.set((v) => ({ ...v, status: "error", error: asError(error) }));
    }
  }

  async markRead(notificationIds: readonly string[]): Promise<void> {
    if (notificationIds.length === 0) return;
    await this.client.markNotificationsRead({ notificationIds: [...notificationIds] });
    const ids = new Set(notificationIds);
    this.set((v) => {
      const newlyRead = v.notifications.filter((n) => ids.has(n.notificationId) && !n.read).length;
      return {
        ...v,
        notifications: v.notifications.map((n) => (ids.has(n.notificationId) ? { ...n, read: true } : n)),
        unread: Math.max(0, v.unread - newlyRead),
      };
    });
  }

  async markAllRead(): Promise<void> {
    await this.client.markNotificationsRead({ all: true });
    this.set((v) => ({ ...v, notifications: v.notifications.map((n) => (n.read ? n : { ...n, read: true })), unread: 0 }));
  }
}

export interface UseNotifications extends NotificationsView {
  markRead(notificationIds: readonly string[]): Promise<void>;
  markAllRead(): Promise<void>;
}

/** Your notifications and unread count, live (mentions, shares, comments while you were elsewhere). */
export function useNotifications(): UseNotifications {
  const { state, store } = useLiveStore("notifications", (client) => new NotificationsStore(client));
  return useMemo(
    () => ({
      ...state,
      markRead: (ids: readonly string[]) => store.markRead(ids),
      markAllRead: () => store.markAllRead(),
    }),
    [state, store],
  );
}
