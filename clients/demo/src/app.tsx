import { useState, type FormEvent } from "react";
import type { ConversationKind, Message, Role } from "@stackpro/messaging-client";
import { useConnectionState, useConversations, useMessagingClient, useNotifications } from "@stackpro/messaging-react";
import { Chat } from "./chat.js";
import { FilesPanel } from "./files.js";
import { AlertsPanel, ThreadPanel } from "./side.js";
import { useReport, useToast } from "./toast.js";

export interface Me {
  tenant: string;
  user: string;
  role: Role;
}

export type Tab = "thread" | "results" | "files" | "alerts";

const STATUS: Record<string, [string, string]> = {
  initialized: ["connecting", "Connecting…"],
  connecting: ["connecting", "Connecting…"],
  connected: ["open", "Connected"],
  disconnected: ["connecting", "Reconnecting…"],
  suspended: ["suspended", "Offline, still retrying"],
  closed: ["closed", "Disconnected"],
  failed: ["failed", "Refused"],
};

function Status() {
  const { state, reason, retryInMs } = useConnectionState();
  const [kind, text] = STATUS[state] ?? ["closed", state];
  const detail =
    state === "failed" ? ` (${reason?.message ?? "sign in again"})` : retryInMs !== undefined && (state === "disconnected" || state === "suspended") ? ` (next try in ${Math.ceil(retryInMs / 1000)} s)` : "";
  return (
    <span className={`status ${kind}`} data-testid="status" data-state={state} title={reason?.message}>
      ● {text}
      {detail}
    </span>
  );
}

export function App({ me }: { me: Me }) {
  const client = useMessagingClient();
  const report = useReport();
  const notifications = useNotifications();
  const [open, setOpen] = useState<string | undefined>();
  const [tab, setTab] = useState<Tab>("files");
  const [thread, setThread] = useState<number | undefined>();
  const [results, setResults] = useState<{ query: string; results: Message[] } | undefined>();

  const search = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const query = String(new FormData(event.currentTarget).get("query") ?? "").trim();
    if (!query) return;
    const answer = await report(client.search(query));
    if (answer) {
      setResults({ query: answer.query, results: answer.results });
      setTab("results");
    }
  };
  const openConversation = (id: string) => {
    setOpen(id);
    setThread(undefined);
  };

  return (
    <>
      <header>
        <h1>StackPro Messaging</h1>
        <Status />
        <span data-testid="whoami">
          {me.user} · {me.role} · portal {me.tenant}
        </span>
        <button type="button" className={`bell${notifications.unread > 0 ? " unread" : ""}`} data-testid="bell" onClick={() => setTab("alerts")}>
          🔔 <span data-testid="bell-count">{notifications.unread}</span>
        </button>
        <form className="inline search" onSubmit={(e) => void search(e)}>
          <input name="query" placeholder="Search my conversations" data-testid="search" />
          <button data-testid="search-go">Search</button>
        </form>
      </header>
      <main id="app">
        <Conversations me={me} open={open} onOpen={openConversation} />
        {open ? (
          <Chat key={open} me={me} conversationId={open} onThread={(seq) => (setThread(seq), setTab("thread"))} />
        ) : (
          <section id="chat">
            <div id="chat-header">
              <h2 data-testid="chat-title">Pick a conversation</h2>
            </div>
          </section>
        )}
        <section id="side">
          <nav>
            {(["thread", "results", "files", "alerts"] as const).map((t) => (
              <button key={t} className={tab === t ? "active" : ""} data-testid={`tab-${t}`} onClick={() => setTab(t)}>
                {{ thread: "Thread", results: "Search", files: "Files", alerts: "Alerts" }[t]}
              </button>
            ))}
          </nav>
          {tab === "thread" && open && thread !== undefined && <ThreadPanel key={`${open}:${thread}`} conversationId={open} parentSeq={thread} />}
          {tab === "results" && <Results results={results} onOpen={openConversation} />}
          {tab === "files" && <FilesPanel me={me} conversationId={open} />}
          {tab === "alerts" && <AlertsPanel onOpen={openConversation} />}
        </section>
      </main>
    </>
  );
}

function Conversations({ me, open, onOpen }: { me: Me; open: string | undefined; onOpen: (id: string) => void }) {
  const list = useConversations();
  const report = useReport();
  const toast = useToast();
  const join = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const id = String(new FormData(form).get("conversationId") ?? "").trim();
    form.reset();
    if (id && (await report(list.join(id)))) onOpen(id);
  };
  const create = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const data = new FormData(form);
    const id = String(data.get("conversationId") ?? "").trim();
    const title = String(data.get("title") ?? "").trim();
    const members = String(data.get("members") ?? "")
      .split(",")
      .map((m) => m.trim())
      .filter(Boolean);
    form.reset();
    const ack = await report(list.create({ conversationId: id, kind: String(data.get("kind")) as ConversationKind, ...(title ? { title } : {}), members }));
    if (ack) onOpen(ack.conversationId ?? id);
  };
  const client = useMessagingClient();
  const add = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    const members = String(new FormData(form).get("members") ?? "")
      .split(",")
      .map((m) => m.trim())
      .filter(Boolean);
    form.reset();
    if (open && members.length > 0 && (await report(client.addMembers(open, members)))) toast(`Added ${members.join(", ")}`, "info");
  };
  return (
    <aside>
      <h2>Conversations</h2>
      <ul id="conversations" data-testid="conversations">
        {list.conversations.map((c) => (
          <li key={c.conversationId} data-testid="conversation" data-id={c.conversationId} className={c.conversationId === open ? "active" : ""} onClick={() => onOpen(c.conversationId)}>
            <span>{c.title ?? c.conversationId}</span>
            <span className="kind">{c.kind}</span>
            {c.unreadCount > 0 && c.conversationId !== open && (
              <span className="badge" data-testid="unread">
                {c.unreadCount >= 100 ? "100+" : c.unreadCount}
              </span>
            )}
          </li>
        ))}
      </ul>
      {list.hasMore && (
        <button type="button" onClick={() => void report(list.loadMore())}>
          More conversations
        </button>
      )}
      <form className="inline" onSubmit={(e) => void join(e)}>
        <input name="conversationId" placeholder="conversation id" required data-testid="join-id" />
        <button data-testid="join">Join</button>
      </form>
      <form className="stacked" onSubmit={(e) => void create(e)}>
        <h3>New conversation</h3>
        <input name="conversationId" placeholder="id, e.g. project-42" required data-testid="create-id" />
        <select name="kind" defaultValue="project" data-testid="create-kind">
          <option value="general">general</option>
          <option value="project">project</option>
          <option value="file">file</option>
        </select>
        <input name="title" placeholder="title (optional)" data-testid="create-title" />
        <input name="members" placeholder="members, comma separated" data-testid="create-members" />
        <button data-testid="create">Create</button>
      </form>
      {open && me.role !== "USER" && (
        <form className="inline" onSubmit={(e) => void add(e)}>
          <input name="members" placeholder="add members to this one" data-testid="add-members" />
          <button data-testid="add">Add</button>
        </form>
      )}
    </aside>
  );
}

function Results({ results, onOpen }: { results: { query: string; results: Message[] } | undefined; onOpen: (id: string) => void }) {
  const { conversations } = useConversations();
  if (!results) return <ol id="results" data-testid="results" />;
  const title = (id: string) => {
    const c = conversations.find((x) => x.conversationId === id);
    return c?.title ?? id;
  };
  return (
    <ol id="results" data-testid="results">
      {results.results.length === 0 && <li>Nothing found for “{results.query}”</li>}
      {results.results.map((m) => (
        <li key={`${m.conversationId}:${m.seq}`} data-testid="search-result" onClick={() => onOpen(m.conversationId)}>
          {title(m.conversationId)} · {m.senderName ?? m.senderId}: {m.content.text}
        </li>
      ))}
    </ol>
  );
}
