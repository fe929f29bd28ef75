// StackPro Messaging demo client. Plain JavaScript, no build step. Every piece of user text is
// written with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  socket: null, me: null, conversations: new Map(), open: null,
  typing: new Map(), // userId -> { timer }
  members: new Map(), // userId -> status, for the open conversation
  requests: 0, typingSentAt: 0, typingStopTimer: null,
};

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 5000);
}

function setStatus(kind, text) {
  const s = $("status");
  s.className = "status " + kind;
  s.textContent = "● " + text;
}

function send(frame) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    frame.requestId = frame.requestId || "r" + (++state.requests);
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
    send({ type: "LIST_CONVERSATIONS" });
  };
  socket.onclose = (e) => {
    setStatus("closed", `Disconnected (${e.code})`);
    $("composer").disabled = $("send").disabled = true;
  };
  socket.onerror = () => toast("The connection was refused or lost.");
  socket.onmessage = (e) => handle(JSON.parse(e.data));
}

function handle(frame) {
  switch (frame.type) {
    case "CONVERSATIONS":
      state.conversations.clear();
      frame.conversations.forEach((c) => state.conversations.set(c.conversationId, c));
      renderConversations();
      renderTitle();
      break;
    case "CONVERSATION_CREATED":
      state.conversations.set(frame.conversation.conversationId, frame.conversation);
      renderConversations();
      renderTitle();
      break;
    case "HISTORY":
      if (frame.conversationId !== state.open) break;
      $("messages").replaceChildren();
      frame.messages.slice().reverse().forEach(appendMessage);
      state.members = new Map(frame.members.map((m) => [m.userId, m.status]));
      renderMembers();
      break;
    case "NEW_MESSAGE": {
      const c = state.conversations.get(frame.data.conversationId);
      if (c) c.lastActivity = frame.data.timestamp;
      if (frame.data.conversationId === state.open) {
        appendMessage(frame.data);
        clearTyping(frame.data.senderId);
      } else {
        markUnread(frame.data.conversationId);
      }
      break;
    }
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
    case "ACK":
      if (frame.action === "CHAT_MESSAGE") {
        const text = state.pending.get(frame.requestId);
        state.pending.delete(frame.requestId);
        if (text !== undefined) {
          appendMessage({ messageId: frame.messageId, senderId: state.me.user, timestamp: frame.timestamp, content: { text } });
        }
      } else if (frame.action === "JOIN_CONVERSATION" || frame.action === "CREATE_CONVERSATION") {
        send({ type: "LIST_CONVERSATIONS" });
        openConversation(frame.conversationId);
      }
      break;
    case "ERROR":
      toast(`${frame.code}: ${frame.message}`);
      state.pending.delete(frame.requestId);
      break;
    default:
      if (frame.message) toast(frame.message);
  }
}

function renderConversations() {
  const list = $("conversations");
  list.replaceChildren();
  [...state.conversations.values()]
    .sort((a, b) => (b.lastActivity || "").localeCompare(a.lastActivity || ""))
    .forEach((c) => {
      const li = document.createElement("li");
      li.dataset.id = c.conversationId;
      li.dataset.testid = "conversation";
      li.className = c.conversationId === state.open ? "active" : "";
      const name = document.createElement("span");
      name.textContent = c.title || c.conversationId;
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = c.kind;
      li.append(name, kind);
      if (c.unread) { const u = document.createElement("strong"); u.textContent = " •"; li.append(u); }
      li.onclick = () => openConversation(c.conversationId);
      list.append(li);
    });
}

function markUnread(id) {
  const c = state.conversations.get(id);
  if (c) { c.unread = true; renderConversations(); }
}

function openConversation(id) {
  state.open = id;
  const c = state.conversations.get(id);
  if (c) c.unread = false;
  renderTitle();
  $("messages").replaceChildren();
  state.typing.forEach((t) => clearTimeout(t));
  state.typing.clear();
  renderTyping();
  $("composer").disabled = $("send").disabled = false;
  renderConversations();
  send({ type: "GET_HISTORY", conversationId: id });
}

function renderTitle() {
  if (!state.open) return;
  const c = state.conversations.get(state.open);
  $("chat-title").textContent = c ? `${c.title || c.conversationId}  ·  ${c.channel}` : state.open;
}

function appendMessage(m) {
  const li = document.createElement("li");
  li.dataset.testid = "message";
  if (m.senderId === state.me.user) li.classList.add("mine");
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = `${m.senderName || m.senderId} · ${new Date(m.timestamp).toLocaleTimeString()}`;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = m.content.text; // never innerHTML
  li.append(meta, text);
  $("messages").append(li);
  $("messages").scrollTop = $("messages").scrollHeight;
}

function renderMembers() {
  const list = $("members");
  list.replaceChildren();
  [...state.members.entries()].forEach(([user, status]) => {
    const li = document.createElement("li");
    li.dataset.testid = "member";
    li.dataset.status = status;
    const dot = document.createElement("span");
    dot.className = "dot " + status;
    const name = document.createElement("span");
    name.textContent = user;
    li.append(dot, name);
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
  if (!state.open) return;
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

state.pending = new Map(); // requestId -> text, until its ACK (ACKs may come in any order)
function sendMessage() {
  const text = $("composer").value;
  if (!text.trim() || !state.open) return;
  stopTyping();
  const requestId = "r" + (++state.requests);
  state.pending.set(requestId, text);
  send({ type: "CHAT_MESSAGE", requestId, conversationId: state.open,
    clientMessageId: crypto.randomUUID ? crypto.randomUUID() : String(Date.now()), content: { text, type: "text" } });
  $("composer").value = "";
}

$("login-form").onsubmit = (e) => { e.preventDefault(); connect(e.target).catch((err) => toast(String(err))); };
$("send-form").onsubmit = (e) => { e.preventDefault(); sendMessage(); };
$("composer").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); sendMessage(); }
});
$("composer").addEventListener("input", composerTyped);
$("composer").addEventListener("blur", stopTyping);
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
