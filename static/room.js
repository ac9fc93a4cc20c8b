// The room page: one WebSocket speaking docs/protocol.md. Everything from the
// network is inserted as text (textContent), never as HTML. In an end-to-end
// encrypted room, texts are encrypted here before sending and decrypted here
// on arrival (static/e2e.js); the server only ever has ciphertext.
import * as e2e from "./e2e.js";

const body = document.body;
const ROOM = body.dataset.room;
const MAX_BYTES = Number(body.dataset.maxBytes) || 4096;
const ADMIN = body.dataset.admin === "true";
let myName = body.dataset.name || "";

const els = {
  status: document.getElementById("status"),
  messages: document.getElementById("messages"),
  typing: document.getElementById("typing"),
  composer: document.getElementById("composer"),
  text: document.getElementById("text"),
  send: document.getElementById("send"),
  note: document.getElementById("composer-note"),
  members: document.getElementById("member-list"),
  memberCount: document.getElementById("member-count"),
  copy: document.getElementById("copy-link"),
  membersPanel: document.getElementById("members"),
  membersToggle: document.getElementById("toggle-members"),
  dialog: document.getElementById("name-dialog"),
  nameForm: document.getElementById("name-form"),
  nameInput: document.getElementById("name-input"),
  nameError: document.getElementById("name-error"),
  e2eBadge: document.getElementById("e2e-badge"),
  e2ePanel: document.getElementById("e2e-panel"),
  e2eExplain: document.getElementById("e2e-explain"),
  keyForm: document.getElementById("key-form"),
  keyLabel: document.getElementById("key-label"),
  keyInput: document.getElementById("key-input"),
  keySubmit: document.getElementById("key-submit"),
  keyError: document.getElementById("key-error"),
  keyChange: document.getElementById("key-change"),
};

const state = {
  socket: null,
  joined: false,
  attempt: 0,
  // The room's run of ids; a new one means the ids shown may have been
  // given again, so the page starts over from the server's history.
  epoch: null,
  lastId: 0, // the newest id shown
  // The newest id with nothing missing before it (since the first page):
  // sent as `since` when reconnecting, so a gap is asked for again until filled.
  seenThrough: 0,
  oldestId: null, // the oldest id shown; `before` for loading older history
  moreOlder: true,
  // The one history request in flight: { purpose: "older" } or { purpose: "gap", floor }.
  historyRequest: null,
  resendPending: false, // on the first `joined` of each new socket
  byId: new Map(), // id -> element: a message is shown once
  pending: new Map(), // nonce -> element of a message not yet confirmed
  // nonce -> { plain, wire } of a message not yet confirmed: what was typed,
  // and what goes on the wire (the envelope, null until encrypted).
  outbox: new Map(),
  sending: Promise.resolve(), // encryptions queue here, so sends keep their order
  online: false, // the socket has joined and can send
  nonceSeq: 0,
  members: new Map(), // name -> count of sessions with that name
  typers: new Map(), // name -> timeout
  unread: 0,
  lastTypingSent: 0,
};

// An end-to-end encrypted room, from its first `joined` on.
const crypt = {
  info: null, // the room's `encryption` object; null in a plain room
  key: null, // the room's key (base64url) once this page has it
  cryptoKey: Promise.resolve(null), // the same as a WebCrypto key
  envelopes: new WeakMap(), // a message's .body element -> its envelope
};

// An invite link brings the key in its fragment (never sent to a server):
// keep it, then take it out of the address bar, and so out of the history,
// bookmarks and screenshots. "Copy invite link" puts it back for sharing.
function takeKeyFromFragment() {
  const key = e2e.keyFromLink(location.hash);
  if (!key) return null;
  e2e.storeKey(ROOM, key);
  history.replaceState(history.state, "", location.pathname + location.search);
  return key;
}
// Also kept here: with localStorage off, the page is all there is.
const fragmentKey = takeKeyFromFragment();

// ---- rendering -------------------------------------------------------------

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

// Text with its URLs as links; both made of DOM nodes, never parsed HTML.
function richText(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    fragment.append(text.slice(last, match.index));
    const link = document.createElement("a");
    link.href = match[0];
    link.textContent = match[0];
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    fragment.append(link);
    last = match.index + match[0].length;
  }
  fragment.append(text.slice(last));
  return fragment;
}

function localTime(ts) {
  const date = new Date(ts);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/// `plain`: the text of an encrypted message already known (our own).
function messageElement(m, { pending = false, plain } = {}) {
  const el = document.createElement("article");
  el.className = "msg";
  if (m.user === myName) el.classList.add("own");
  if (pending) el.classList.add("pending");
  el.dataset.user = m.user;
  if (m.id) el.dataset.id = m.id;
  if (m.ts) el.dataset.ts = m.ts;
  const meta = document.createElement("div");
  meta.className = "meta";
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = m.user;
  const time = document.createElement("time");
  time.dateTime = m.ts || "";
  time.textContent = pending ? "sending…" : localTime(m.ts);
  meta.append(who, time);
  const text = document.createElement("p");
  text.className = "body";
  // A pending message is our own, still as typed.
  if (crypt.info && !pending) fillEncryptedBody(text, m.text, plain);
  else text.append(richText(m.text));
  el.append(meta, text);
  if (ADMIN && m.id) {
    // Admins can delete from the room itself; everyone gets `message_deleted`.
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "link delete";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete message from ${m.user}`);
    remove.addEventListener("click", async () => {
      const response = await fetch(`/admin/rooms/${ROOM}/messages/${m.id}`, { method: "DELETE" });
      if (!response.ok) els.note.textContent = "Could not delete the message.";
    });
    el.append(remove);
  }
  return el;
}

// Consecutive messages from one sender within five minutes share a header.
function regroup(el) {
  const prev = el.previousElementSibling;
  const sameSender = prev && prev.classList.contains("msg") && prev.dataset.user === el.dataset.user;
  const close = sameSender && (!el.dataset.ts || !prev.dataset.ts || new Date(el.dataset.ts) - new Date(prev.dataset.ts) < 5 * 60 * 1000);
  el.classList.toggle("grouped", Boolean(close));
}

function atBottom() {
  const m = els.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 40;
}

function scrollToBottom() {
  els.messages.scrollTop = els.messages.scrollHeight;
  hidePill();
}

let pill = null;
function showPill() {
  if (pill) return;
  pill = document.createElement("button");
  pill.type = "button";
  pill.className = "new-pill";
  pill.textContent = "New messages ↓";
  pill.addEventListener("click", scrollToBottom);
  els.messages.parentElement.append(pill);
}
function hidePill() {
  pill?.remove();
  pill = null;
}

// ---- encrypted texts ---------------------------------------------------------

const PLACEHOLDERS = {
  link: "encrypted: you need the room's link",
  passphrase: "encrypted: you need the room's passphrase",
  insecure: "encrypted: open Parlor over HTTPS to read it",
};
const UNDECRYPTABLE = "could not be decrypted";

function missingKeyText() {
  if (!e2e.available()) return PLACEHOLDERS.insecure;
  return crypt.info.key === "passphrase" ? PLACEHOLDERS.passphrase : PLACEHOLDERS.link;
}

// Each message is placed (in id order) at once, and its text filled in when
// its decryption ends, however long each one takes.
function fillEncryptedBody(bodyEl, envelope, plain) {
  crypt.envelopes.set(bodyEl, envelope);
  if (plain !== undefined) bodyEl.append(richText(plain));
  else decryptInto(bodyEl);
}

async function decryptInto(bodyEl) {
  const keyPromise = crypt.cryptoKey;
  showPlaceholder(bodyEl, crypt.key ? "decrypting…" : missingKeyText());
  if (!crypt.key) return;
  const cryptoKey = await keyPromise;
  const plain = await e2e.decrypt(cryptoKey, ROOM, crypt.envelopes.get(bodyEl)).catch(() => null);
  // A key that came meanwhile decrypts this again.
  if (keyPromise !== crypt.cryptoKey) return;
  // Never the raw text: a message that does not authenticate says so.
  if (plain === null) {
    showPlaceholder(bodyEl, UNDECRYPTABLE, "undecryptable");
    return;
  }
  keepingView(bodyEl, () => {
    bodyEl.className = "body";
    bodyEl.replaceChildren(richText(plain));
  });
}

function showPlaceholder(bodyEl, text, kind = "") {
  keepingView(bodyEl, () => {
    bodyEl.className = `body placeholder ${kind}`.trim();
    bodyEl.textContent = text;
  });
}

// Changes a message's text without moving what the reader looks at: at the
// bottom it stays at the bottom; a message above the view that grows
// pushes the view down by as much.
function keepingView(bodyEl, change) {
  if (!bodyEl.isConnected) return change(); // not placed yet: nothing to keep
  const list = els.messages;
  const wasAtBottom = atBottom();
  const above = bodyEl.getBoundingClientRect().bottom <= list.getBoundingClientRect().top;
  const before = bodyEl.offsetHeight;
  change();
  if (wasAtBottom) list.scrollTop = list.scrollHeight;
  else if (above) list.scrollTop += bodyEl.offsetHeight - before;
}

function decryptAllShown() {
  for (const bodyEl of els.messages.querySelectorAll(".msg[data-id] .body")) {
    if (crypt.envelopes.has(bodyEl)) decryptInto(bodyEl);
  }
}

/// The room's key from now on: every message shown is decrypted again.
function useKey(key) {
  crypt.key = key;
  crypt.cryptoKey = e2e.importKey(key).catch(() => null);
  els.keyForm.hidden = true;
  explainEncryption();
  decryptAllShown();
  updateComposer();
}

/// The first `joined` of an encrypted room: show it as such and find the key.
function setUpEncryption(info) {
  if (!info || crypt.info) return;
  crypt.info = info;
  els.e2eBadge.hidden = false;
  els.e2ePanel.hidden = false;
  const key = e2e.available() ? fragmentKey ?? e2e.loadKey(ROOM) : null;
  if (key) useKey(key);
  else askForKey();
}

function explainEncryption() {
  const passphrase = crypt.info.key === "passphrase";
  const who = passphrase ? "the passphrase" : "the invite link";
  // A key can be wrong without anything to tell (say, a passphrase typed for
  // a room without messages yet): it can always be replaced.
  els.keyChange.hidden = !crypt.key || !els.keyForm.hidden;
  els.keyChange.textContent = passphrase ? "Enter another passphrase" : "Use another invite link";
  els.e2eExplain.textContent = !e2e.available()
    ? `This room is end-to-end encrypted. ${e2e.NEEDS_HTTPS}`
    : crypt.key
      ? `Encrypted in your browser: the server stores only ciphertext. Anyone with ${who} can read it.`
      : `This room is end-to-end encrypted: you need ${who} to read it or write in it.`;
}

function askForKey() {
  explainEncryption();
  if (!e2e.available()) return;
  const passphrase = crypt.info.key === "passphrase";
  els.keyLabel.textContent = passphrase ? "The room's passphrase" : "The room's invite link";
  els.keyInput.type = passphrase ? "password" : "text";
  els.keyInput.placeholder = passphrase ? "passphrase" : `${location.origin}/chat/${ROOM}#k=…`;
  els.keyForm.hidden = false;
  els.keyChange.hidden = true;
}

els.keyChange.addEventListener("click", () => {
  askForKey();
  els.keyInput.focus();
});

/// Whether `key` opens the room: it decrypts any message shown (or there is
/// none to check against).
async function opensShownMessages(key) {
  const bodies = els.messages.querySelectorAll(".msg[data-id] .body");
  const envelopes = [...bodies].map((bodyEl) => crypt.envelopes.get(bodyEl)).filter(Boolean);
  if (envelopes.length === 0) return true;
  const cryptoKey = await e2e.importKey(key);
  const results = await Promise.allSettled(envelopes.map((envelope) => e2e.decrypt(cryptoKey, ROOM, envelope)));
  return results.some((result) => result.status === "fulfilled");
}

async function keyFromForm() {
  const value = els.keyInput.value;
  if (crypt.info.key !== "passphrase") {
    const key = e2e.keyFromLink(value) ?? (e2e.isKey(value.trim()) ? value.trim() : null);
    if (!key) throw new Error("That is not an invite link with a key: it ends in #k= and 43 more characters.");
    return key;
  }
  if (value === "") throw new Error("Enter the passphrase.");
  // 600,000 rounds of PBKDF2 take a moment, on purpose.
  els.keySubmit.textContent = "Checking…";
  try {
    return await e2e.keyFromPassphrase(value, crypt.info);
  } finally {
    els.keySubmit.textContent = "Unlock";
  }
}

els.keyForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  els.keyError.textContent = "";
  els.keySubmit.disabled = true;
  try {
    const key = await keyFromForm();
    if (!(await opensShownMessages(key))) {
      els.keyError.textContent =
        crypt.info.key === "passphrase"
          ? "Wrong passphrase: it does not decrypt this room's messages."
          : "That link's key does not decrypt this room's messages.";
      return;
    }
    e2e.storeKey(ROOM, key);
    els.keyInput.value = "";
    useKey(key);
  } catch (error) {
    els.keyError.textContent = error.message;
  } finally {
    els.keySubmit.disabled = false;
  }
});

// ---- placing messages ----------------------------------------------------------

/// The pending message with this nonce, no longer waiting: its element and
/// what was sent.
function settle(nonce) {
  const el = state.pending.get(nonce);
  const sent = state.outbox.get(nonce);
  state.pending.delete(nonce);
  state.outbox.delete(nonce);
  return { el, sent };
}

function markFailed(el) {
  el.classList.remove("pending");
  el.classList.add("failed");
  el.querySelector("time").textContent = "not sent";
}

// Places a confirmed message by id: once, in id order.
function addMessage(m, { live = false } = {}) {
  const { el: pendingEl, sent } = m.nonce ? settle(m.nonce) : {};
  if (state.byId.has(m.id)) {
    // Already shown (from history after a reconnect): drop the pending copy.
    pendingEl?.remove();
    return;
  }
  const wasAtBottom = atBottom();
  let el;
  if (pendingEl) {
    // Our own: in an encrypted room, the text we typed is the one we sent.
    el = messageElement(m, { plain: sent?.wire === m.text ? sent.plain : undefined });
    pendingEl.replaceWith(el);
  } else {
    el = messageElement(m);
    // Newer than everything shown (the usual case): it goes last, before any
    // pending messages of our own. Older: find its place by id.
    const after =
      m.id > state.lastId
        ? els.messages.querySelector(".msg.pending")
        : [...els.messages.querySelectorAll(".msg[data-id]")].find((other) => Number(other.dataset.id) > m.id);
    els.messages.insertBefore(el, after || null);
  }
  state.byId.set(m.id, el);
  regroup(el);
  if (el.nextElementSibling) regroup(el.nextElementSibling);
  state.lastId = Math.max(state.lastId, m.id);
  if (live && m.id === state.seenThrough + 1) state.seenThrough = m.id;
  state.oldestId = state.oldestId === null ? m.id : Math.min(state.oldestId, m.id);
  if (live) {
    if (m.user === myName || wasAtBottom) scrollToBottom();
    else showPill();
    if (document.hidden) {
      state.unread += 1;
      updateTitle();
    }
  }
}

function notice(text) {
  const p = document.createElement("p");
  p.className = "notice";
  p.textContent = text;
  const wasAtBottom = atBottom();
  els.messages.append(p);
  if (wasAtBottom) scrollToBottom();
}

function updateTitle() {
  const base = `#${ROOM} · Parlor`;
  document.title = state.unread > 0 ? `(${state.unread}) ${base}` : base;
}

/// `total`: the server's count of connections, when it sent one (a busy
/// room's names are kept once each, however many tabs share them).
function renderMembers(total) {
  els.members.replaceChildren();
  const names = [...state.members.keys()].sort((a, b) => a.localeCompare(b));
  for (const name of names) {
    const li = document.createElement("li");
    li.textContent = name === myName ? `${name} (you)` : name;
    els.members.append(li);
  }
  const count = total ?? [...state.members.values()].reduce((a, b) => a + b, 0);
  els.memberCount.textContent = `(${count})`;
  els.membersToggle.textContent = `Members (${count})`;
}

function renderTyping() {
  const names = [...state.typers.keys()];
  els.typing.textContent =
    names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…`;
}

function setStatus(text, kind) {
  els.status.textContent = text;
  els.status.className = `status ${kind}`;
  state.online = kind === "online";
  updateComposer();
}

/// Why this page cannot send now, or "".
function sendBlocker() {
  if (!state.online) return `You can't send right now: ${els.status.textContent}.`;
  if (crypt.info && !e2e.available()) return `You can't send here: ${e2e.NEEDS_HTTPS}`;
  if (crypt.info && !crypt.key) {
    const what = crypt.info.key === "passphrase" ? "passphrase" : "invite link";
    return `You can't send here: this room is end-to-end encrypted and this page does not have its ${what}.`;
  }
  return "";
}

function updateComposer() {
  const blocker = sendBlocker();
  els.text.disabled = blocker !== "";
  els.send.disabled = blocker !== "";
  if (blocker) els.note.textContent = blocker;
  else if (els.note.textContent.startsWith("You can't send")) els.note.textContent = "";
}

// ---- the connection ----------------------------------------------------------

function send(frame) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(frame));
    return true;
  }
  return false;
}

// The ids shown belong to another epoch: drop every confirmed message and
// take the server's history as if the page had just loaded.
function forgetMessages() {
  for (const el of els.messages.querySelectorAll(".msg[data-id]")) el.remove();
  state.byId.clear();
  state.lastId = 0;
  state.seenThrough = 0;
  state.oldestId = null;
  state.moreOlder = true;
  notice("the server lost track of this room's latest messages; history was reloaded");
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws`);
  state.socket = socket;
  setStatus(state.attempt === 0 ? "connecting…" : "reconnecting…", "connecting");
  socket.addEventListener("open", () => {
    state.historyRequest = null; // any request in flight died with the old socket
    state.resendPending = true;
    const join = { type: "join_room", room: ROOM, name: myName };
    if (state.lastId > 0) {
      join.since = state.seenThrough;
      join.epoch = state.epoch;
    }
    send(join);
  });
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    handle(frame);
  });
  socket.addEventListener("close", (event) => {
    if (state.socket !== socket || state.removed) return;
    state.joined = false;
    state.attempt += 1;
    // Exponential backoff with full jitter, capped at 15 s.
    const delay = Math.random() * Math.min(15000, 500 * 2 ** Math.min(state.attempt, 5));
    const why = event.code === 1008 ? "the connection was too slow" : "disconnected";
    setStatus(`${why}; reconnecting in ${Math.ceil(delay / 1000)} s`, "offline");
    setTimeout(connect, delay);
  });
}

function handle(frame) {
  switch (frame.type) {
    case "joined": {
      // Before the history: its texts are envelopes in an encrypted room.
      setUpEncryption(frame.encryption);
      state.joined = true;
      state.attempt = 0;
      state.members = new Map();
      for (const name of frame.members) state.members.set(name, (state.members.get(name) || 0) + 1);
      // A busy room lists only its first names; the count is the server's.
      renderMembers(frame.member_count > frame.members.length ? frame.member_count : undefined);
      if (state.epoch !== null && frame.epoch !== state.epoch) forgetMessages();
      state.epoch = frame.epoch;
      const reconnect = state.lastId > 0;
      const floor = state.seenThrough; // nothing is missing up to here
      els.messages.setAttribute("aria-busy", "true");
      for (const m of frame.history) addMessage(m);
      els.messages.removeAttribute("aria-busy");
      if (!reconnect) {
        state.moreOlder = frame.truncated;
        state.seenThrough = state.lastId;
        scrollToBottom();
      } else if (frame.truncated) {
        // More was missed than one page (or the history could not be read):
        // page backwards from the first one received until the gap closes.
        requestHistory({ purpose: "gap", floor }, frame.history[0]?.id);
      } else {
        state.seenThrough = state.lastId;
      }
      // Anything still pending was never confirmed: send it again, once per
      // socket. The server recognises a resent nonce and stores it once.
      if (state.resendPending) {
        state.resendPending = false;
        for (const [nonce, sent] of state.outbox) {
          // One still being encrypted goes out when that ends.
          if (sent.wire !== null) send({ type: "send_message", room: ROOM, text: sent.wire, nonce });
        }
      }
      setStatus("connected", "online");
      break;
    }
    case "message":
      addMessage(frame, { live: true });
      state.typers.delete(frame.user);
      renderTyping();
      break;
    case "history": {
      const request = state.historyRequest;
      state.historyRequest = null;
      const keep = els.messages.scrollHeight - els.messages.scrollTop;
      els.messages.setAttribute("aria-busy", "true");
      for (const m of frame.messages) addMessage(m);
      els.messages.removeAttribute("aria-busy");
      if (request?.purpose === "older") {
        state.moreOlder = frame.messages.length > 0;
        els.messages.scrollTop = els.messages.scrollHeight - keep; // no jump
      } else if (request?.purpose === "gap") {
        const first = frame.messages[0]?.id;
        if (first !== undefined && first > request.floor + 1) requestHistory(request, first);
        else state.seenThrough = state.lastId; // the gap is closed
      }
      break;
    }
    case "presence":
      if (frame.action === "join") {
        state.members.set(frame.user, (state.members.get(frame.user) || 0) + 1);
        notice(`${frame.user} joined`);
      } else {
        const left = (state.members.get(frame.user) || 1) - 1;
        if (left > 0) state.members.set(frame.user, left);
        else state.members.delete(frame.user);
        notice(`${frame.user} left`);
      }
      renderMembers();
      break;
    case "presence_batch": {
      // A busy room: the state of every name that came or went lately.
      for (const name of frame.joined) if (!state.members.has(name)) state.members.set(name, 1);
      for (const name of frame.left) state.members.delete(name);
      const parts = [];
      if (frame.joined.length) parts.push(`${frame.joined.length} joined`);
      if (frame.left.length) parts.push(`${frame.left.length} left`);
      if (parts.length) notice(parts.join(", "));
      renderMembers(frame.members);
      break;
    }
    case "typing": {
      clearTimeout(state.typers.get(frame.user));
      state.typers.set(
        frame.user,
        setTimeout(() => {
          state.typers.delete(frame.user);
          renderTyping();
        }, 3500),
      );
      renderTyping();
      break;
    }
    case "error":
      if (frame.nonce && state.pending.has(frame.nonce)) markFailed(settle(frame.nonce).el);
      // An error without a nonce may answer the history request in flight.
      if (!frame.nonce) state.historyRequest = null;
      if (frame.code === "invalid_name") askForName(frame.message);
      else els.note.textContent = frame.message;
      break;
    case "message_deleted": {
      const el = state.byId.get(frame.id);
      if (el) {
        const next = el.nextElementSibling;
        el.remove();
        state.byId.delete(frame.id);
        if (next) regroup(next);
      }
      break;
    }
    case "kicked":
    case "room_closed":
      // Out of the room for good on this page: do not rejoin by ourselves.
      state.removed = true;
      notice(frame.type === "kicked" ? "An admin removed you from this room." : "An admin closed this room.");
      setStatus(frame.type === "kicked" ? "removed from the room" : "room closed", "offline");
      state.socket?.close();
      break;
    default:
      break;
  }
}

// Asks for one page of history (the newest, without `before`); one request
// at a time, so each answer is known to be for its purpose.
function requestHistory(request, before) {
  const frame = { type: "history", room: ROOM, limit: request.purpose === "gap" ? 100 : 50 };
  if (before !== undefined) frame.before = before;
  if (send(frame)) state.historyRequest = request;
}

// ---- sending -----------------------------------------------------------------

function tooLong(text) {
  // The server's limit counts what is sent: in an encrypted room, the
  // envelope, about a third longer than the text.
  if (crypt.info) {
    return e2e.envelopeBytes(text) > MAX_BYTES
      ? `Message is too long (limit ${MAX_BYTES} bytes once encrypted, which adds about a third).`
      : "";
  }
  return new TextEncoder().encode(text).length > MAX_BYTES ? `Message is too long (limit ${MAX_BYTES} bytes).` : "";
}

function submit() {
  const text = els.text.value;
  if (text.trim() === "") return;
  const problem = tooLong(text);
  if (problem) {
    els.note.textContent = problem;
    return;
  }
  if (sendBlocker() || state.socket?.readyState !== WebSocket.OPEN) return;
  state.nonceSeq += 1;
  const nonce = `${Date.now().toString(36)}-${state.nonceSeq}`;
  const sent = { plain: text, wire: crypt.info ? null : text };
  state.outbox.set(nonce, sent);
  if (crypt.info) state.sending = state.sending.then(() => encryptAndSend(nonce, sent));
  else send({ type: "send_message", room: ROOM, text, nonce });
  const el = messageElement({ user: myName, text }, { pending: true });
  state.pending.set(nonce, el);
  els.messages.append(el);
  regroup(el);
  scrollToBottom();
  els.text.value = "";
  els.note.textContent = "";
  // Sending ends "typing": the next keystroke announces it again.
  state.lastTypingSent = 0;
  autosize();
}

async function encryptAndSend(nonce, sent) {
  try {
    sent.wire = await e2e.encrypt(await crypt.cryptoKey, ROOM, sent.plain);
  } catch {
    const { el } = settle(nonce);
    if (el) markFailed(el);
    els.note.textContent = "The message could not be encrypted, so it was not sent.";
    return;
  }
  // Unless it was given up meanwhile. If the socket is down, the resend
  // after reconnecting takes it.
  if (state.outbox.get(nonce) === sent) send({ type: "send_message", room: ROOM, text: sent.wire, nonce });
}

function autosize() {
  els.text.style.height = "auto";
  els.text.style.height = `${els.text.scrollHeight}px`;
}

els.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  submit();
});
els.text.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    submit();
  }
});
els.text.addEventListener("input", () => {
  autosize();
  if (!els.text.disabled) els.note.textContent = "";
  const now = Date.now();
  if (state.joined && now - state.lastTypingSent > 2000) {
    state.lastTypingSent = now;
    send({ type: "typing", room: ROOM });
  }
});

els.messages.addEventListener("scroll", () => {
  if (atBottom()) hidePill();
  if (els.messages.scrollTop < 60 && state.moreOlder && !state.historyRequest && state.joined && state.oldestId) {
    requestHistory({ purpose: "older" }, state.oldestId);
  }
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden) {
    state.unread = 0;
    updateTitle();
  }
});

els.copy.addEventListener("click", async () => {
  // A link room's invite carries its key; a passphrase room's does not.
  const withKey = crypt.info?.key === "link" && crypt.key;
  const link = withKey ? e2e.inviteLink(location.origin, ROOM, crypt.key) : `${location.origin}/chat/${ROOM}`;
  try {
    await navigator.clipboard.writeText(link);
    els.copy.textContent = "Link copied";
  } catch {
    els.copy.textContent = link;
  }
  setTimeout(() => (els.copy.textContent = "Copy invite link"), 2500);
});

els.membersToggle.addEventListener("click", () => {
  const open = els.membersPanel.classList.toggle("open");
  els.membersToggle.setAttribute("aria-expanded", String(open));
});

// ---- the name ------------------------------------------------------------------

// Without a name there is nothing to join: the dialog cannot be dismissed.
els.dialog.addEventListener("cancel", (event) => {
  if (!myName) event.preventDefault();
});

function askForName(message) {
  els.nameError.textContent = message || "";
  els.nameInput.value = myName;
  if (!els.dialog.open) els.dialog.showModal();
}

els.nameForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = els.nameInput.value.trim();
  // Remember the name in the session cookie, as the home page does.
  const response = await fetch("/create_room", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ room: ROOM, name }),
  });
  if (!response.ok) {
    els.nameError.textContent = (await response.json()).message;
    return;
  }
  myName = name;
  els.dialog.close();
  if (state.socket) send({ type: "join_room", room: ROOM, name: myName });
  else connect();
});

if (myName) connect();
else askForName("");
