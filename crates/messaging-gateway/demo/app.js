// StackPro Messaging demo client. Plain JavaScript, no build step. Every piece of user text is
// written with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "testid") node.dataset.testid = v;
    else if (k === "text") node.textContent = v;
    else if (k === "onclick") node.onclick = v;
    else node[k] = v;
  }
  node.append(...children);
  return node;
};
const PRESENCE_HEARTBEAT_MS = 2 * 60 * 1000;

const state = {
  socket: null, me: null, conversations: new Map(), open: null,
  messages: new Map(), // seq -> message, for the open conversation
  typing: new Map(), // userId -> timer
  members: new Map(), // userId -> status, for the open conversation
  requests: 0, typingSentAt: 0, typingStopTimer: null,
  pending: new Map(), // requestId -> what it was for, until its answer
  mode: null, // { kind: "edit", seq } while editing
  thread: null, // seq of the open thread
  files: new Map(), openFile: null,
  alerts: [], // in-app notifications, newest first
};

function toast(text, kind = "error") {
  const t = $("toast");
  t.textContent = text;
  t.className = kind;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 5000);
}

function setStatus(kind, text) {
  const s = $("status");
  s.className = "status " + kind;
  s.textContent = "● " + text;
}

function send(frame, purpose) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    frame.requestId = frame.requestId || "r" + (++state.requests);
    if (purpose) state.pending.set(frame.requestId, purpose);
    state.socket.send(JSON.stringify(frame));
  }
}

async function connect(form) {
  const params = new URLSearchParams(new FormData(form));
  const tokenResponse = await fetch("/dev/token?" + params);
  const body = await tokenResponse.json();
  if (!tokenResponse.ok) { toast(body.message || "could not get a token"); return; }
  const { stage } = await (await fetch("/dev/config.json")).json();
  state.me = { tenant: params.get("tenant"), user: params.get("user"), role: params.get("role") };
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/${stage}?token=${encodeURIComponent(body.token)}`);
  state.socket = socket;
  setStatus("connecting", "Connecting…");
  socket.onopen = () => {
    setStatus("open", "Connected");
    $("whoami").textContent = `${state.me.user} · ${state.me.role} · portal ${state.me.tenant}`;
    $("login").hidden = true;
    $("app").hidden = false;
    $("search-form").hidden = false;
    send({ type: "LIST_CONVERSATIONS" });
    send({ type: "LIST_FILES" });
    send({ type: "LIST_NOTIFICATIONS" });
    send({ type: "GET_PREFERENCES" });
    $("bell").hidden = false;
    showTab("files");
    heartbeat();
    state.heartbeat = setInterval(heartbeat, PRESENCE_HEARTBEAT_MS);
  };
  socket.onclose = (e) => {
    setStatus("closed", `Disconnected (${e.code})`);
    $("composer").disabled = $("send").disabled = true;
    clearInterval(state.heartbeat);
  };
  socket.onerror = () => toast("The connection was refused or lost.");
  socket.onmessage = (e) => handle(JSON.parse(e.data));
}

// Presence lapses after 5 minutes without SET_PRESENCE: this is the heartbeat, and "away"
// while the tab is hidden.
function heartbeat() {
  send({ type: "SET_PRESENCE", status: document.visibilityState === "hidden" ? "away" : "online" });
}
document.addEventListener("visibilitychange", heartbeat);

function handle(frame) {
  const purpose = frame.requestId ? state.pending.get(frame.requestId) : undefined;
  if (frame.requestId) state.pending.delete(frame.requestId);
  switch (frame.type) {
    case "CONVERSATIONS":
      state.conversations.clear();
      frame.conversations.forEach((c) => state.conversations.set(c.conversationId, c));
      renderConversations();
      renderTitle();
      break;
    case "CONVERSATION_CREATED":
      state.conversations.set(frame.conversation.conversationId, { ...frame.conversation, unreadCount: 0, lastReadSeq: 0 });
      renderConversations();
      renderTitle();
      break;
    case "HISTORY":
      if (frame.conversationId !== state.open) break;
      $("messages").replaceChildren();
      state.messages.clear();
      frame.messages.slice().reverse().forEach(showMessage);
      state.members = new Map(frame.members.map((m) => [m.userId, m.status]));
      renderMembers();
      markRead();
      break;
    case "NEW_MESSAGE": {
      const m = frame.data;
      const c = state.conversations.get(m.conversationId);
      if (c) { c.lastActivity = m.timestamp; c.lastSeq = Math.max(c.lastSeq || 0, m.seq); }
      if (m.conversationId === state.open) {
        showMessage(m);
        clearTyping(m.senderId);
        markRead();
      } else if (c && !(c.counted ||= new Set()).has(m.seq)) {
        // A message is its seq: a copy delivered again (a resent send) counts once.
        c.counted.add(m.seq);
        c.unreadCount = (c.unreadCount || 0) + 1;
        renderConversations();
      }
      break;
    }
    case "THREAD_REPLY":
      if (frame.data.conversationId !== state.open) break;
      updateMessage(frame.data.parentSeq, (m) => { m.threadCount = frame.threadCount; });
      if (state.thread === frame.data.parentSeq) showReply(frame.data);
      break;
    case "MESSAGE_EDITED":
      if (frame.data.conversationId === state.open) updateMessage(frame.data.seq, (m) => Object.assign(m, frame.data));
      break;
    case "MESSAGE_DELETED":
      if (frame.conversationId === state.open) {
        updateMessage(frame.seq, (m) => { m.deleted = true; m.content.text = ""; m.reactions = {}; });
      }
      break;
    case "REACTIONS_CHANGED":
      if (frame.conversationId === state.open) updateMessage(frame.seq, (m) => { m.reactions = frame.reactions; });
      break;
    case "TYPING_START":
      if (frame.conversationId === state.open) showTyping(frame.userId, frame.expiresAt);
      break;
    case "TYPING_STOP":
      clearTyping(frame.userId);
      break;
    case "PRESENCE":
      if (state.members.has(frame.userId)) { state.members.set(frame.userId, frame.status); renderMembers(); }
      break;
    case "MEMBER_JOINED":
      if (frame.conversationId === state.open) { state.members.set(frame.userId, "online"); renderMembers(); }
      if (frame.userId === state.me.user) send({ type: "LIST_CONVERSATIONS" });
      break;
    case "MEMBER_REMOVED":
      if (frame.userId === state.me.user) {
        state.conversations.delete(frame.conversationId);
        if (state.open === frame.conversationId) closeConversation();
        renderConversations();
        toast(`You were removed from ${frame.conversationId}`);
      } else if (frame.conversationId === state.open) {
        state.members.delete(frame.userId);
        renderMembers();
      }
      break;
    case "THREAD":
      renderThread(frame);
      break;
    case "SEARCH_RESULTS":
      renderResults(frame);
      break;
    case "FILES":
      state.files = new Map(frame.files.map((f) => [f.fileId, f]));
      renderFiles();
      break;
    case "FILE":
      state.files.set(frame.file.fileId, { ...frame.file, permissions: frame.permissions });
      renderFiles();
      if (frame.upload && purpose && purpose.upload) upload(frame.upload, purpose.upload, frame.file);
      if (purpose && purpose.open) openFile(frame.file.fileId);
      break;
    case "FILE_SHARED":
      state.files.set(frame.file.fileId, { ...frame.file, permissions: frame.permissions });
      renderFiles();
      toast(`${frame.sharedBy} shared ${frame.file.name} with you`, "info");
      break;
    case "FILE_SHARE_REVOKED":
      state.files.delete(frame.fileId);
      if (state.openFile === frame.fileId) closeFile();
      renderFiles();
      break;
    case "FILE_COMMENTS":
      if (frame.fileId === state.openFile) frame.comments.forEach(showComment);
      break;
    case "FILE_COMMENT":
      if (frame.comment.fileId === state.openFile) showComment(frame.comment);
      break;
    case "NOTIFICATION":
      state.alerts.unshift(frame.notification);
      renderAlerts();
      toast(frame.notification.text, "info");
      break;
    case "NOTIFICATIONS":
      state.alerts = frame.notifications;
      renderAlerts();
      break;
    case "PREFERENCES":
      $("prefs-form").email.checked = frame.preferences.email;
      $("pref-address").textContent = frame.preferences.emailAddress || "no verified address";
      state.preferences = frame.preferences;
      break;
    case "FILE_URL":
      if (frame.method === "GET") window.open(frame.url, "_blank", "noopener");
      break;
    case "ACK":
      acknowledged(frame, purpose);
      break;
    case "ERROR":
      toast(`${frame.code}: ${frame.message}`);
      break;
    default:
      if (frame.message) toast(frame.message);
  }
}

function acknowledged(frame, purpose) {
  switch (frame.action) {
    case "CHAT_MESSAGE":
      if (purpose && purpose.text !== undefined && !frame.duplicate) {
        const message = { conversationId: frame.conversationId, messageId: frame.messageId, seq: frame.seq,
          senderId: state.me.user, timestamp: frame.timestamp, content: { text: purpose.text, type: "text" },
          reactions: {}, threadCount: 0, parentSeq: purpose.parentSeq };
        if (purpose.parentSeq) {
          updateMessage(purpose.parentSeq, (m) => { m.threadCount = (m.threadCount || 0) + 1; });
          if (state.thread === purpose.parentSeq) showReply(message);
        } else if (frame.conversationId === state.open) {
          showMessage(message);
        }
      }
      break;
    case "EDIT_MESSAGE":
      if (purpose) updateMessage(purpose.seq, (m) => { m.content.text = purpose.text; m.edited = true; });
      break;
    case "DELETE_MESSAGE":
      updateMessage(frame.seq, (m) => { m.deleted = true; m.content.text = ""; m.reactions = {}; });
      break;
    case "ADD_REACTION":
    case "REMOVE_REACTION":
      if (purpose) updateMessage(purpose.seq, (m) => {
        const users = new Set((m.reactions || {})[purpose.emoji] || []);
        if (frame.action === "ADD_REACTION") users.add(state.me.user); else users.delete(state.me.user);
        m.reactions = { ...(m.reactions || {}) };
        if (users.size) m.reactions[purpose.emoji] = [...users]; else delete m.reactions[purpose.emoji];
      });
      break;
    case "JOIN_CONVERSATION":
    case "CREATE_CONVERSATION":
      send({ type: "LIST_CONVERSATIONS" });
      openConversation(frame.conversationId);
      break;
    case "SHARE_FILE":
      toast(`Shared ${state.files.get(frame.fileId)?.name || frame.fileId}`, "info");
      break;
    case "FILE_COMMENT":
      break;
    case "MARK_NOTIFICATIONS_READ":
      state.alerts.forEach((a) => { a.read = true; });
      renderAlerts();
      break;
  }
}

// ---------------------------------------------------------------- in-app notifications

function renderAlerts() {
  const unread = state.alerts.filter((a) => !a.read).length;
  $("bell-count").textContent = String(unread);
  $("bell").classList.toggle("unread", unread > 0);
  $("alerts").replaceChildren(...state.alerts.map((a) => {
    const li = el("li", { testid: "alert", className: a.read ? "read" : "",
      text: `${a.text}${a.data.messagePreview ? ": " + a.data.messagePreview : ""}` });
    if (a.data.conversationId) li.onclick = () => openConversation(a.data.conversationId);
    return li;
  }));
}

// ---------------------------------------------------------------- conversations

function renderConversations() {
  const list = $("conversations");
  list.replaceChildren();
  [...state.conversations.values()]
    .sort((a, b) => (b.lastActivity || "").localeCompare(a.lastActivity || ""))
    .forEach((c) => {
      const li = el("li", { testid: "conversation", className: c.conversationId === state.open ? "active" : "" },
        el("span", { text: c.title || c.conversationId }), el("span", { className: "kind", text: c.kind }));
      li.dataset.id = c.conversationId;
      if (c.unreadCount > 0 && c.conversationId !== state.open) {
        li.append(el("span", { className: "badge", testid: "unread", text: c.unreadCount >= 100 ? "100+" : String(c.unreadCount) }));
      }
      li.onclick = () => openConversation(c.conversationId);
      list.append(li);
    });
}

function openConversation(id) {
  state.open = id;
  const c = state.conversations.get(id);
  if (c) c.unreadCount = 0;
  renderTitle();
  $("messages").replaceChildren();
  state.messages.clear();
  state.typing.forEach((t) => clearTimeout(t));
  state.typing.clear();
  renderTyping();
  setMode(null);
  $("composer").disabled = $("send").disabled = false;
  $("add-form").hidden = state.me.role === "USER";
  renderConversations();
  send({ type: "GET_HISTORY", conversationId: id });
}

function closeConversation() {
  state.open = null;
  $("messages").replaceChildren();
  $("chat-title").textContent = "Pick a conversation";
  $("composer").disabled = $("send").disabled = true;
}

function renderTitle() {
  if (!state.open) return;
  const c = state.conversations.get(state.open);
  $("chat-title").textContent = c ? `${c.title || c.conversationId}  ·  ${c.channel}` : state.open;
}

// Read receipts: everything shown is read.
function markRead() {
  const newest = Math.max(0, ...state.messages.keys());
  const c = state.conversations.get(state.open);
  if (!c || newest <= (c.lastReadSeq || 0)) return;
  c.lastReadSeq = newest;
  send({ type: "MARK_READ", conversationId: state.open, seq: newest });
}

// ---------------------------------------------------------------- messages

function showMessage(m) {
  if (m.parentSeq) return; // replies live in their thread
  m.reactions = m.reactions || {};
  state.messages.set(m.seq, m);
  const existing = $("messages").querySelector(`[data-seq="${m.seq}"]`);
  const node = renderMessage(m);
  if (existing) existing.replaceWith(node);
  else {
    const later = [...$("messages").children].find((li) => Number(li.dataset.seq) > m.seq);
    $("messages").insertBefore(node, later || null);
    if (!later) $("messages").scrollTop = $("messages").scrollHeight;
  }
}

function updateMessage(seq, change) {
  const m = state.messages.get(seq);
  if (!m) return;
  change(m);
  showMessage(m);
}

function renderMessage(m) {
  const li = el("li", { testid: "message" });
  li.dataset.seq = m.seq;
  if (m.senderId === state.me.user) li.classList.add("mine");
  if (m.deleted) li.classList.add("deleted");
  const meta = el("span", { className: "meta",
    text: `${m.senderName || m.senderId} · ${new Date(m.timestamp).toLocaleTimeString()} · #${m.seq}` });
  if (!m.deleted) meta.append(actions(m));
  const text = el("span", { className: "text", testid: "message-text", text: m.deleted ? "message deleted" : m.content.text });
  li.append(meta, text);
  if (m.edited && !m.deleted) li.append(el("span", { className: "edited", testid: "edited", text: " (edited)" }));
  const reactions = el("div", { className: "reactions", testid: "reactions" });
  for (const [emoji, users] of Object.entries(m.reactions || {})) {
    const mine = users.includes(state.me.user);
    reactions.append(el("button", { className: "reaction" + (mine ? " mine" : ""), testid: "reaction", type: "button",
      title: users.join(", "), text: `${emoji} ${users.length}`, onclick: () => react(m, emoji) }));
  }
  if (reactions.childElementCount) li.append(reactions);
  if (m.threadCount > 0) {
    li.append(el("button", { className: "thread-count", testid: "thread-count", type: "button",
      text: `${m.threadCount} ${m.threadCount === 1 ? "reply" : "replies"}`, onclick: () => openThread(m.seq) }));
  }
  return li;
}

function actions(m) {
  const box = el("span", { className: "actions" });
  box.append(el("button", { type: "button", testid: "react", text: "👍", title: "React", onclick: () => react(m, "👍") }));
  box.append(el("button", { type: "button", testid: "reply", text: "Reply", onclick: () => openThread(m.seq) }));
  if (m.senderId === state.me.user) {
    box.append(el("button", { type: "button", testid: "edit", text: "Edit", onclick: () => startEdit(m) }));
  }
  if (m.senderId === state.me.user || state.me.role === "OWNER") {
    box.append(el("button", { type: "button", testid: "delete", text: "Delete", onclick: () =>
      send({ type: "DELETE_MESSAGE", conversationId: m.conversationId, seq: m.seq }) }));
  }
  return box;
}

function react(m, emoji) {
  const mine = ((m.reactions || {})[emoji] || []).includes(state.me.user);
  send({ type: mine ? "REMOVE_REACTION" : "ADD_REACTION", conversationId: m.conversationId, seq: m.seq, emoji },
    { seq: m.seq, emoji });
}

function startEdit(m) {
  setMode({ kind: "edit", seq: m.seq });
  $("composer").value = m.content.text;
  $("composer").focus();
}

function setMode(mode) {
  state.mode = mode;
  $("composer-mode").hidden = !mode;
  if (mode) $("composer-mode").firstElementChild.textContent = `Editing message #${mode.seq}`;
}

// ---------------------------------------------------------------- typing and presence

function renderMembers() {
  const list = $("members");
  list.replaceChildren();
  [...state.members.entries()].forEach(([user, status]) => {
    const li = el("li", { testid: "member" }, el("span", { className: "dot " + status }), el("span", { text: user }));
    li.dataset.status = status;
    li.title = status;
    list.append(li);
  });
}

function showTyping(user, expiresAt) {
  clearTimeout(state.typing.get(user));
  // Hide at expiresAt even if TYPING_STOP never arrives.
  state.typing.set(user, setTimeout(() => clearTyping(user), Math.max(0, expiresAt - Date.now())));
  renderTyping();
}

function clearTyping(user) {
  clearTimeout(state.typing.get(user));
  if (state.typing.delete(user)) renderTyping();
}

function renderTyping() {
  const users = [...state.typing.keys()];
  $("typing").textContent = users.length === 0 ? "" : `${users.join(", ")} ${users.length === 1 ? "is" : "are"} typing…`;
}

function composerTyped() {
  if (!state.open || state.mode) return;
  const now = Date.now();
  if (now - state.typingSentAt > 3000) {
    state.typingSentAt = now;
    send({ type: "TYPING_START", conversationId: state.open });
  }
  clearTimeout(state.typingStopTimer);
  state.typingStopTimer = setTimeout(stopTyping, 2500);
}

function stopTyping() {
  if (state.typingSentAt && state.open) send({ type: "TYPING_STOP", conversationId: state.open });
  state.typingSentAt = 0;
  clearTimeout(state.typingStopTimer);
}

const newId = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);

function sendMessage() {
  const text = $("composer").value;
  if (!text.trim() || !state.open) return;
  if (state.mode && state.mode.kind === "edit") {
    const seq = state.mode.seq;
    send({ type: "EDIT_MESSAGE", conversationId: state.open, seq, content: { text, type: "text" } }, { seq, text });
    setMode(null);
  } else {
    stopTyping();
    send({ type: "CHAT_MESSAGE", conversationId: state.open, clientMessageId: newId(), content: { text, type: "text" } },
      { text });
  }
  $("composer").value = "";
}

// ---------------------------------------------------------------- side panel: thread, search, files

function showTab(name) {
  for (const tab of ["thread", "results", "files", "alerts"]) {
    $("tab-" + tab).hidden = tab !== name;
    document.querySelector(`[data-tab="${tab}"]`).classList.toggle("active", tab === name);
  }
}

function openThread(seq) {
  state.thread = seq;
  $("thread-parent").replaceChildren();
  $("thread-replies").replaceChildren();
  showTab("thread");
  send({ type: "GET_THREAD", conversationId: state.open, seq });
}

function renderThread(frame) {
  if (frame.parent.seq !== state.thread) return;
  $("thread-parent").replaceChildren(el("strong", { text: frame.parent.senderName || frame.parent.senderId }),
    el("span", { text: " " + (frame.parent.deleted ? "message deleted" : frame.parent.content.text) }));
  $("thread-replies").replaceChildren();
  frame.replies.forEach(showReply);
}

function showReply(m) {
  $("thread-replies").append(el("li", { testid: "reply", text: `${m.senderName || m.senderId}: ${m.content.text}` }));
}

function renderResults(frame) {
  showTab("results");
  const list = $("results");
  list.replaceChildren();
  if (frame.results.length === 0) list.append(el("li", { text: `Nothing found for “${frame.query}”` }));
  frame.results.forEach((m) => {
    const c = state.conversations.get(m.conversationId);
    list.append(el("li", { testid: "search-result",
      text: `${c ? c.title || c.conversationId : m.conversationId} · ${m.senderName || m.senderId}: ${m.content.text}`,
      onclick: () => openConversation(m.conversationId) }));
  });
}

function renderFiles() {
  const list = $("files");
  list.replaceChildren();
  [...state.files.values()].forEach((f) => {
    const li = el("li", { testid: "file", className: f.fileId === state.openFile ? "active" : "",
      text: `${f.name} (${f.owner})`, onclick: () => openFile(f.fileId) });
    list.append(li);
  });
}

function openFile(id) {
  const f = state.files.get(id);
  if (!f) return;
  state.openFile = id;
  showTab("files");
  renderFiles();
  $("file-detail").hidden = false;
  $("file-name").textContent = f.name;
  const p = f.permissions || {};
  $("file-permissions").textContent = "You may: " + ["read", "comment", "edit", "download"].filter((k) => p[k]).join(", ");
  $("comment-form").hidden = !p.comment;
  $("file-download").hidden = !p.download;
  $("share-form").hidden = !(f.owner === state.me.user || state.me.role !== "USER");
  $("file-comments").replaceChildren();
  send({ type: "LIST_FILE_COMMENTS", fileId: id, limit: 100 });
}

function closeFile() {
  state.openFile = null;
  $("file-detail").hidden = true;
}

function showComment(c) {
  const where = c.position ? ` (page ${c.position.page})` : "";
  $("file-comments").append(el("li", { testid: "file-comment", text: `${c.authorName || c.author}${where}: ${c.content}` }));
}

async function upload(url, file, view) {
  try {
    const response = await fetch(url.url, { method: url.method, headers: url.headers, body: file });
    if (response.ok) toast(`Uploaded ${view.name}`, "info");
    else toast(`Upload of ${view.name} failed: HTTP ${response.status}`);
  } catch (e) {
    toast(`Upload of ${view.name} failed: ${e}`);
  }
}

// ---------------------------------------------------------------- wiring

$("login-form").onsubmit = (e) => { e.preventDefault(); connect(e.target).catch((err) => toast(String(err))); };
$("send-form").onsubmit = (e) => { e.preventDefault(); sendMessage(); };
$("composer").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); sendMessage(); }
  if (e.key === "Escape") { setMode(null); $("composer").value = ""; }
});
$("composer").addEventListener("input", composerTyped);
$("composer").addEventListener("blur", stopTyping);
$("cancel-mode").onclick = () => { setMode(null); $("composer").value = ""; };
$("join-form").onsubmit = (e) => {
  e.preventDefault();
  send({ type: "JOIN_CONVERSATION", conversationId: e.target.conversationId.value.trim() });
  e.target.reset();
};
$("create-form").onsubmit = (e) => {
  e.preventDefault();
  const f = e.target;
  const members = f.members.value.split(",").map((m) => m.trim()).filter(Boolean);
  send({ type: "CREATE_CONVERSATION", conversationId: f.conversationId.value.trim(), kind: f.kind.value,
    title: f.title.value.trim() || undefined, members });
  f.reset();
};
$("add-form").onsubmit = (e) => {
  e.preventDefault();
  const members = e.target.members.value.split(",").map((m) => m.trim()).filter(Boolean);
  if (members.length && state.open) send({ type: "ADD_MEMBERS", conversationId: state.open, members });
  e.target.reset();
};
$("search-form").onsubmit = (e) => {
  e.preventDefault();
  const query = e.target.query.value.trim();
  if (query) send({ type: "SEARCH", query });
};
document.querySelectorAll("#side nav button").forEach((b) => { b.onclick = () => showTab(b.dataset.tab); });
$("thread-form").onsubmit = (e) => {
  e.preventDefault();
  const text = $("thread-composer").value;
  if (!text.trim() || !state.thread) return;
  send({ type: "CHAT_MESSAGE", conversationId: state.open, parentSeq: state.thread, clientMessageId: newId(),
    content: { text, type: "text" } }, { text, parentSeq: state.thread });
  $("thread-composer").value = "";
};
$("upload-form").onsubmit = (e) => {
  e.preventDefault();
  const file = $("file-input").files[0];
  if (!file) { toast("Choose a file first"); return; }
  send({ type: "REGISTER_FILE", name: file.name, size: file.size, mimeType: file.type || "application/octet-stream" },
    { upload: file, open: true });
  e.target.reset();
};
$("comment-form").onsubmit = (e) => {
  e.preventDefault();
  const f = e.target;
  const content = f.content.value;
  if (!content.trim() || !state.openFile) return;
  const frame = { type: "FILE_COMMENT", fileId: state.openFile, content };
  if (f.page.value) frame.position = { page: Number(f.page.value), x: 0.5, y: 0.5 };
  send(frame);
  showComment({ author: state.me.user, content, position: frame.position });
  f.reset();
};
$("share-form").onsubmit = (e) => {
  e.preventDefault();
  const f = e.target;
  const user = f.user.value.trim();
  if (!user || !state.openFile) return;
  send({ type: "SHARE_FILE", fileId: state.openFile, userId: user,
    permissions: { read: f.read.checked, comment: f.comment.checked, edit: f.edit.checked, download: f.download.checked } });
  f.reset();
};
$("bell").onclick = () => showTab("alerts");
$("mark-all").onclick = () => send({ type: "MARK_NOTIFICATIONS_READ", all: true });
$("prefs-form").onsubmit = (e) => {
  e.preventDefault();
  const f = e.target;
  // Addresses come from the sign-in's verified claims; only the switches are ours to set.
  const { emailAddress, phoneNumber, ...switches } = state.preferences || {};
  const preferences = { ...switches, email: f.email.checked };
  send({ type: "SET_PREFERENCES", preferences });
};
$("file-download").onclick = () => state.openFile && send({ type: "GET_DOWNLOAD_URL", fileId: state.openFile });
