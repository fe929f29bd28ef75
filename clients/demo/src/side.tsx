import { useEffect, useState, type FormEvent } from "react";
import type { Preferences } from "@stackpro/messaging-client";
import { useMessagingClient, useNotifications, useThread } from "@stackpro/messaging-react";
import { useReport, useToast } from "./toast.js";

export function ThreadPanel({ conversationId, parentSeq }: { conversationId: string; parentSeq: number }) {
  const thread = useThread(conversationId, parentSeq);
  const report = useReport();
  const [text, setText] = useState("");
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!text.trim()) return;
    void report(thread.reply(text));
    setText("");
  };
  const parent = thread.parent;
  return (
    <div id="tab-thread" className="tab">
      <div id="thread-parent" data-testid="thread-parent">
        {parent && (
          <>
            <strong>{parent.senderName ?? parent.senderId}</strong> <span>{parent.deleted ? "message deleted" : parent.content.text}</span>
          </>
        )}
      </div>
      <ol id="thread-replies" data-testid="thread-replies">
        {thread.replies.map((m) => (
          <li key={m.seq} data-testid="thread-reply">
            {m.senderName ?? m.senderId}: {m.deleted ? "message deleted" : m.content.text}
          </li>
        ))}
      </ol>
      {thread.hasMore && (
        <button type="button" onClick={() => void report(thread.loadMore())}>
          More replies
        </button>
      )}
      <form id="thread-form" className="inline" onSubmit={submit}>
        <input id="thread-composer" placeholder="Reply in thread" data-testid="thread-composer" value={text} onChange={(e) => setText(e.target.value)} />
        <button data-testid="thread-send">Reply</button>
      </form>
    </div>
  );
}

export function AlertsPanel({ onOpen }: { onOpen: (conversationId: string) => void }) {
  const notifications = useNotifications();
  const report = useReport();
  return (
    <div id="tab-alerts" className="tab">
      <button type="button" data-testid="mark-all-read" onClick={() => void report(notifications.markAllRead())}>
        Mark all read
      </button>
      <ol id="alerts" data-testid="alerts">
        {notifications.notifications.map((a) => {
          const preview = typeof a.data.messagePreview === "string" ? `: ${a.data.messagePreview}` : "";
          const conversationId = typeof a.data.conversationId === "string" ? a.data.conversationId : undefined;
          return (
            <li key={a.notificationId} data-testid="alert" className={a.read ? "read" : ""} onClick={() => conversationId && onOpen(conversationId)}>
              {a.text}
              {preview}
            </li>
          );
        })}
      </ol>
      <PreferencesForm />
    </div>
  );
}

function PreferencesForm() {
  const client = useMessagingClient();
  const report = useReport();
  const toast = useToast();
  const [preferences, setPreferences] = useState<Preferences | undefined>();
  useEffect(() => {
    let live = true;
    void report(client.getPreferences()).then((answer) => live && answer && setPreferences(answer.preferences));
    return () => {
      live = false;
    };
  }, [client, report]);
  const save = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    if (!preferences) return;
    // Addresses come from the sign-in's verified claims; only the switches are ours to set.
    const { emailAddress: _address, phoneNumber: _phone, ...switches } = preferences;
    const email = new FormData(event.currentTarget).get("email") === "on";
    const answer = await report(client.setPreferences({ ...switches, email }));
    if (answer) {
      setPreferences(answer.preferences);
      toast("Preferences saved", "info");
    }
  };
  return (
    <form id="prefs-form" className="stacked" onSubmit={(e) => void save(e)} key={preferences ? "loaded" : "loading"}>
      <h3>Email notifications</h3>
      <label className="row">
        <input type="checkbox" name="email" defaultChecked={preferences?.email === true} data-testid="pref-email" /> email me while I am away
      </label>
      <p className="muted">
        to <span data-testid="pref-address">{preferences?.emailAddress ?? "no verified address"}</span> (the address your sign-in verified)
      </p>
      <button data-testid="pref-save" disabled={!preferences}>
        Save
      </button>
    </form>
  );
}
