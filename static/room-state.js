// The room page's shared parts: what the server put on <body>, the page's
// elements, the state the room-*.js modules read and change, and sending on
// the socket. It imports none of them, so every one of them can import it.

const body = document.body;
export const ROOM = body.dataset.room;
export const MAX_BYTES = Number(body.dataset.maxBytes) || 4096;
export const ADMIN = body.dataset.admin === "true";
// Set through setMyName: a module's importers cannot assign its variables.
export let myName = body.dataset.name || "";

export function setMyName(name) {
  myName = name;
}

export const els = {
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
  reconnect: document.getElementById("reconnect-now"),
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

export const state = {
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
  online: false, // the socket has joined: what is sent goes out at once
  reconnectTimer: null, // the next attempt, while disconnected
  removed: false, // an admin kicked this page out or closed the room: no reconnecting
  mutedUntil: 0, // an admin muted this person in the room until then (ms since the epoch)
  nonceSeq: 0,
  members: new Map(), // name -> count of sessions with that name
  typers: new Map(), // name -> timeout
  unread: 0, // messages from others since the reader last caught up (room-alerts.js)
  unreadMention: false, // one of them mentions the reader
  lastTypingSent: 0,
  // Ids of messages deleted while this page watched: quotes of them say so.
  deleted: new Set(),
};

// An end-to-end encrypted room, from its first `joined` on.
export const crypt = {
  info: null, // the room's `encryption` object; null in a plain room
  key: null, // the room's key (base64url) once this page has it
  cryptoKey: Promise.resolve(null), // the same as a WebCrypto key
  envelopes: new WeakMap(), // a message's .body element -> its envelope
};

// ---- the connection's sending side ----------------------------------------------

/// Sends a frame if the socket is open; whether it went.
export function send(frame) {
  if (state.socket && state.socket.readyState === WebSocket.OPEN) {
    state.socket.send(JSON.stringify(frame));
    return true;
  }
  return false;
}

/// Asks for one page of history (the newest, without `before`); one request
/// at a time, so each answer is known to be for its purpose: "older" (the
/// reader scrolled up), "gap" (with `floor`: a reconnect missed more than a
/// page) or "jump" (with `target`: a reply's original is being looked for).
export function requestHistory(request, before) {
  const frame = { type: "history", room: ROOM, limit: request.purpose === "older" ? 50 : 100 };
  if (before !== undefined) frame.before = before;
  if (!send(frame)) return false;
  state.historyRequest = request;
  return true;
}
