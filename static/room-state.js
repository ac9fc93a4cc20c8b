// The room page's shared parts: what the server put on <body>, the page's
// elements, the state the room-*.js modules read and change, and sending on
// the socket. It imports none of them, so every one of them can import it.
//
// One socket, several rooms (docs/protocol.md: every frame names its room).
// Each room the page is in has a state object of its own in `rooms` (its
// messages, members, history cursor, pending sends, key, …) and a message
// list element of its own; only the current room's list is in the document
// (as #messages), the others fill up off-screen and are swapped in when the
// reader switches rooms (room-sidebar.js).

const body = document.body;
/// The room the page was opened on (its address when it loaded).
export const INITIAL_ROOM = body.dataset.room;
export const MAX_BYTES = Number(body.dataset.maxBytes) || 4096;
export const ADMIN = body.dataset.admin === "true";
export const ACCOUNT = body.dataset.account === "true";
/// An admin opened the room with `?watch`: in it unseen (docs/protocol.md, `hidden`).
export const WATCH = ADMIN && new URLSearchParams(location.search).has("watch");
/// The protocol's room names (as the home page checks them).
export const ROOM_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
// Set through setMyName: a module's importers cannot assign its variables.
export let myName = body.dataset.name || "";

export function setMyName(name) {
  myName = name;
}

export const els = {
  status: document.getElementById("status"),
  conversation: document.querySelector(".conversation"),
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
  title: document.querySelector(".room-title"),
  whoami: document.querySelector("#whoami .whoami-name"),
  sidebar: document.getElementById("rooms"),
  dialog: document.getElementById("name-dialog"),
  nameForm: document.getElementById("name-form"),
  nameLabel: document.querySelector("#name-form label"),
  nameInput: document.getElementById("name-input"),
  nameError: document.getElementById("name-error"),
  e2eBadge: document.getElementById("e2e-badge"),
  e2ePanel: document.getElementById("e2e-panel"),
  e2eExplain: document.getElementById("e2e-explain"),
  keyForm: document.getElementById("key-form"),
  keyLabel: document.getElementById("key-label"),
  keyInput: document.getElementById("key-input"),
  keySubmit: document.getElementById("key-submit"),
  keyCancel: document.getElementById("key-cancel"),
  keyError: document.getElementById("key-error"),
  keyChange: document.getElementById("key-change"),
  keyForget: document.getElementById("key-forget"),
  keyForgetConfirm: document.getElementById("key-forget-confirm"),
  keyForgetYes: document.getElementById("key-forget-yes"),
  keyForgetNo: document.getElementById("key-forget-no"),
};

// ---- the connection ----------------------------------------------------------

export const conn = {
  socket: null,
  attempt: 0,
  reconnectTimer: null, // the next attempt, while disconnected
  // While the socket is not open: what the status says ({ text, kind }).
  down: { text: "connecting…", kind: "connecting" },
  nonceSeq: 0,
};

// ---- the rooms -----------------------------------------------------------------

/// Every room this page is in (or joining), by name, in the sidebar's order.
export const rooms = new Map();
let shown = null; // the current room's state

/// The room on screen.
export const current = () => shown;

export function setCurrent(r) {
  shown = r;
}

// Listeners every message list gets, the lists made later included:
// [type, handler(event, room)] (see `onList`).
const listListeners = [];

/// Listens on every room's message list (the one on screen and those off
/// it): `handler(event, room)`.
export function onList(type, handler) {
  listListeners.push([type, handler]);
  for (const r of rooms.values()) r.list.addEventListener(type, (event) => handler(event, r));
}

function newList() {
  const list = document.createElement("div");
  list.className = "messages";
  list.tabIndex = 0;
  list.setAttribute("role", "log");
  list.setAttribute("aria-live", "polite");
  return list;
}

/// A room's state, before its first `joined`. `list`: its message list
/// (the page's own #messages for the room it was opened on); `first`: at
/// the top of the rooms' order (the most recent), else at the end.
export function addRoom(name, { list = newList(), first = false } = {}) {
  const r = {
    name,
    list,
    joined: false, // its `joined` came on this socket
    hidden: false, // an admin in it unseen (`join_room` with `hidden`)
    // The room's run of ids; a new one means the ids shown may have been
    // given again, so the page starts over from the server's history.
    epoch: null,
    lastId: 0, // the newest id shown
    // The newest id with nothing missing before it (since the first page):
    // sent as `since` when rejoining, so a gap is asked for again until filled.
    seenThrough: 0,
    oldestId: null, // the oldest id shown; `before` for loading older history
    moreOlder: true,
    // The one history request in flight: { purpose: "older" | "gap" | "jump", … }.
    historyRequest: null,
    resendPending: false, // on the first `joined` of each new socket
    byId: new Map(), // id -> element: a message is shown once
    pending: new Map(), // nonce -> element of a message not yet confirmed
    // nonce -> element of a message sent, then put out of the room before
    // it was confirmed: a late answer still says which it was.
    unconfirmed: new Map(),
    // nonce -> { plain, wire, replyTo } of a message not yet confirmed: what
    // was typed, and what goes on the wire (the text or its envelope; null
    // until the page knows which, and until encrypted).
    outbox: new Map(),
    sending: Promise.resolve(), // encryptions queue here, so sends keep their order
    editsInFlight: new Map(), // id -> { plain, wire } of an edit sent, not yet confirmed
    // Why this page is out of the room for good (kicked, closed, …): the
    // status it shows; it is not joined again by itself. Null while in it.
    removed: null,
    removedTag: "", // the same in a word, for the sidebar
    needsName: null, // why the room refused this page's name
    mutedUntil: 0, // an admin muted this person in the room until then (ms since the epoch)
    muteTimer: null,
    members: new Map(), // name -> count of sessions with that name
    memberTotal: undefined, // the server's count, in a busy room
    typers: new Map(), // name -> timeout
    unread: 0, // messages from others since the reader last caught up (room-alerts.js)
    unreadMention: false, // one of them mentions the reader
    lastTypingSent: 0,
    // Ids of messages deleted while this page watched: quotes of them say so.
    deleted: new Set(),
    replying: null, // the id of the message the composer answers (room-actions.js)
    draft: "", // the composer's text while another room is on screen
    // Where the reader was in the list while another room is on screen:
    // null at the bottom, else { el, offset } (room-sidebar.js).
    anchor: null,
    pill: false, // "New messages ↓" is due
    // Whether the room is end-to-end encrypted and, if it is, its key.
    crypt: {
      known: false, // a `joined` has said whether the room is encrypted
      downgraded: false, // called plain, yet this page holds a key for it
      info: null, // the room's `encryption` object; null in a plain room
      key: null, // the room's key (base64url) once this page has it
      cryptoKey: Promise.resolve(null), // the same as a WebCrypto key
      envelopes: new WeakMap(), // a message's .body element -> its envelope
      asking: false, // the key form is out
    },
  };
  for (const [type, handler] of listListeners) list.addEventListener(type, (event) => handler(event, r));
  const rest = first ? [...rooms.values()] : [];
  if (first) rooms.clear();
  rooms.set(name, r);
  for (const other of rest) rooms.set(other.name, other);
  return r;
}

// ---- the connection's sending side ----------------------------------------------

export const isOpen = () => conn.socket?.readyState === WebSocket.OPEN;

/// Sends a frame if the socket is open; whether it went.
export function send(frame) {
  if (!isOpen()) return false;
  conn.socket.send(JSON.stringify(frame));
  return true;
}

/// Joins `r` (again): with `since` and `epoch` once it has messages, so the
/// answer holds exactly what was missed; unseen while `r.hidden`.
export function join(r) {
  const frame = { type: "join_room", room: r.name, name: myName };
  if (r.lastId > 0) {
    frame.since = r.seenThrough;
    frame.epoch = r.epoch;
  }
  if (r.hidden) frame.hidden = true;
  return send(frame);
}

/// Asks for one page of `r`'s history (the newest, without `before`); one
/// request at a time per room, so each answer is known to be for its
/// purpose: "older" (the reader scrolled up), "gap" (with `floor`: a
/// reconnect missed more than a page) or "jump" (with `target`: a reply's
/// original is being looked for).
export function requestHistory(r, request, before) {
  const frame = { type: "history", room: r.name, limit: request.purpose === "older" ? 50 : 100 };
  if (before !== undefined) frame.before = before;
  if (!send(frame)) return false;
  r.historyRequest = request;
  return true;
}
