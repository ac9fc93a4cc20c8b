// The room page: one WebSocket speaking docs/protocol.md, in every room of
// the sidebar at once (each frame names its room). Everything from the
// network is inserted as text (textContent), never as HTML. In an end-to-end
// encrypted room, texts are encrypted here before sending and decrypted here
// on arrival (static/e2e.js); the server only ever has ciphertext.
//
// This module is the entry point (templates/room.html loads it): the
// connection, the protocol's frames, sending, and the name. The rest of the
// page, each module importing only those listed before it (and e2e.js):
//   room-state.js     what the server put on the page, its elements, the
//                     rooms' states (one per room), the current room
//   format.js         formatting, links and mentions as DOM (imports nothing)
//   room-view.js      texts as DOM, scrolling, notices, the title, members,
//                     typing, the status and whether the composer can send
//   room-alerts.js    texts shown, mentions, unread counts and notifications
//   room-e2e.js       each room's key, placeholders, decrypting texts
//   room-parts.js     a message's quote, "(edited)", reactions and buttons
//   room-messages.js  each message's element and its place in its room's list
//   room-actions.js   reacting, replying, editing and deleting
//   room-sidebar.js   the rooms' list, switching rooms, watching unseen
import * as e2e from "./e2e.js";
import { ACCOUNT, myName, setMyName, els, conn, rooms, current, onList, send, join, requestHistory } from "./room-state.js";
import {
  atBottom,
  autosize,
  scrollToBottom,
  hidePill,
  notice,
  renderMembers,
  renderTyping,
  renderStatus,
  setConnection,
  sendBlocker,
  setMuted,
  tooLong,
} from "./room-view.js";
import { missed, lastSeen, saveSeen } from "./room-alerts.js";
import { setUpEncryption } from "./room-e2e.js";
import {
  messageElement,
  regroup,
  settle,
  markFailed,
  markUnconfirmed,
  addMessage,
  markHistoryStart,
} from "./room-messages.js";
import {
  actionFailed,
  continueJump,
  endReply,
  handleRevision,
  messageGone,
  replyTarget,
  resumeAll,
  settleQuotes,
} from "./room-actions.js";
import { renderRooms, setPanel } from "./room-sidebar.js";

// ---- the connection ----------------------------------------------------------

// The ids shown belong to another epoch: drop every confirmed message and
// take the server's history as if the page had just loaded.
function forgetMessages(r) {
  for (const el of r.list.querySelectorAll(".msg[data-id], .day")) el.remove();
  r.byId.clear();
  r.lastId = 0;
  r.seenThrough = 0;
  r.oldestId = null;
  r.moreOlder = true;
  r.deleted.clear();
  endReply(r); // its id may be given to another message now
  markHistoryStart(r);
  notice(r, "the server lost track of this room's latest messages; history was reloaded");
}

/// Every room of the page joined (again), the one on screen first.
function joinAll() {
  const order = [current(), ...[...rooms.values()].filter((r) => r !== current())];
  for (const r of order) if (!r.removed) join(r);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws`);
  conn.socket = socket;
  setConnection(conn.attempt === 0 ? { text: "connecting…", kind: "connecting" } : { text: "reconnecting…", kind: "connecting" });
  els.reconnect.hidden = true;
  socket.addEventListener("open", () => {
    for (const r of rooms.values()) r.historyRequest = null; // any request in flight died with the old socket
    setConnection(null);
    joinAll();
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
    if (conn.socket !== socket) return;
    for (const r of rooms.values()) r.joined = false;
    conn.attempt += 1;
    // Exponential backoff with full jitter, capped at 15 s.
    const delay = Math.random() * Math.min(15000, 500 * 2 ** Math.min(conn.attempt, 5));
    const why = event.code === 1008 ? "the connection was too slow" : "disconnected";
    setConnection({ text: `${why}; reconnecting in ${Math.ceil(delay / 1000)} s`, kind: "offline" });
    conn.reconnectTimer = setTimeout(connect, delay);
    els.reconnect.hidden = false;
  });
}

els.reconnect.addEventListener("click", () => {
  clearTimeout(conn.reconnectTimer);
  connect();
});

/// Out of room `r` for good on this page (the other rooms go on): say why,
/// and do not join it again by ourselves.
function leaveForGood(r, why, status, tag) {
  r.removed = status;
  r.removedTag = tag;
  r.joined = false;
  // What waits here is not sent again. Never put on a socket, it was not
  // sent. Put on one, it may have been stored before the answer was lost;
  // an answer that still comes says which (`r.unconfirmed`).
  let unsent = 0;
  let unconfirmed = 0;
  for (const [nonce, sent] of [...r.outbox]) {
    const { el } = settle(r, nonce);
    if (!el) continue;
    if (sent.socket === null) {
      markFailed(el);
      unsent += 1;
    } else {
      markUnconfirmed(el);
      r.unconfirmed.set(nonce, el);
      unconfirmed += 1;
    }
  }
  // Nobody is with this page in the room any more.
  r.members = new Map();
  renderMembers(r);
  notice(r, why);
  if (unsent > 0) {
    notice(r, `${unsent === 1 ? "A message you wrote was" : `${unsent} messages you wrote were`} not sent.`);
  }
  if (unconfirmed > 0) {
    notice(
      r,
      `${unconfirmed === 1 ? "A message you sent was" : `${unconfirmed} messages you sent were`} not confirmed before that: the others may have ${unconfirmed === 1 ? "it" : "them"}, or not.`,
    );
  }
  if (r === current()) renderStatus();
  renderRooms();
}

// Refusals of `join_room` that joining again would only meet again: the
// status they leave, and the sidebar's word for it.
const KEPT_OUT = {
  kicked: ["removed from the room", "removed"],
  room_closed: ["room closed", "closed"],
  private_room: ["invite-only room", "invite-only"],
  unauthorized: ["guests can't join", "no guests"],
  too_many_rooms: ["in too many rooms", "not joined"],
};

function handleError(r, frame) {
  // A refused message: one still waiting, or one sent before this page was
  // put out of the room (it was not stored after all).
  if (r && frame.nonce && (r.pending.has(frame.nonce) || r.unconfirmed.has(frame.nonce))) {
    markFailed(settle(r, frame.nonce).el);
  }
  // Any other late answer from a room this page was put out of: the room
  // already says why.
  if (r?.removed) return;
  // An error without a nonce may answer the room's history request in flight.
  if (r && !frame.nonce) r.historyRequest = null;
  const onScreen = !r || r === current();
  if (frame.code === "invalid_name") {
    // The name is refused in this room: asked for when the room is on screen.
    if (r) r.needsName = frame.message;
    if (onScreen) askForName(frame.message);
    else notice(r, frame.message);
  } else if (r && KEPT_OUT[frame.code] && !r.joined) {
    leaveForGood(r, frame.message, ...KEPT_OUT[frame.code]);
  } else {
    const text = actionFailed(frame) ?? frame.message;
    if (onScreen) els.note.textContent = text;
  }
}

function handle(frame) {
  if (frame.type === "pong") return;
  const r = typeof frame.room === "string" ? rooms.get(frame.room) : undefined;
  if (frame.type === "error") {
    // About a room this page left meanwhile: nothing to show.
    if (typeof frame.room !== "string" || r) handleError(r, frame);
    return;
  }
  if (!r) return; // a room this page left (`left` included)
  switch (frame.type) {
    case "joined":
      joined(r, frame);
      break;
    case "message": {
      addMessage(r, frame, { live: true });
      clearTimeout(r.typers.get(frame.user));
      r.typers.delete(frame.user);
      renderTyping(r);
      break;
    }
    case "history":
      historyPage(r, frame);
      break;
    case "presence":
      if (frame.action === "join") {
        r.members.set(frame.user, (r.members.get(frame.user) || 0) + 1);
        notice(r, `${frame.user} joined`);
      } else {
        const left = (r.members.get(frame.user) || 1) - 1;
        if (left > 0) r.members.set(frame.user, left);
        else r.members.delete(frame.user);
        notice(r, `${frame.user} left`);
      }
      renderMembers(r);
      break;
    case "presence_batch": {
      // A busy room: the state of every name that came or went lately.
      for (const name of frame.joined) if (!r.members.has(name)) r.members.set(name, 1);
      for (const name of frame.left) r.members.delete(name);
      const parts = [];
      if (frame.joined.length) parts.push(`${frame.joined.length} joined`);
      if (frame.left.length) parts.push(`${frame.left.length} left`);
      if (parts.length) notice(r, parts.join(", "));
      renderMembers(r, frame.members);
      break;
    }
    case "typing": {
      clearTimeout(r.typers.get(frame.user));
      r.typers.set(
        frame.user,
        setTimeout(() => {
          r.typers.delete(frame.user);
          renderTyping(r);
        }, 3500),
      );
      renderTyping(r);
      break;
    }
    case "muted":
      setMuted(r, frame.until);
      break;
    case "message_deleted": {
      const el = r.byId.get(frame.id);
      if (el) {
        const next = el.nextElementSibling;
        el.remove();
        r.byId.delete(frame.id);
        if (next) regroup(next);
      }
      messageGone(r, frame.id);
      break;
    }
    case "message_edited":
    case "reaction_added":
    case "reaction_removed":
      handleRevision(r, frame);
      break;
    case "kicked":
      leaveForGood(r, "An admin removed you from this room.", ...KEPT_OUT.kicked);
      break;
    case "room_closed":
      leaveForGood(r, "An admin closed this room.", ...KEPT_OUT.room_closed);
      break;
    default:
      break;
  }
}

function joined(r, frame) {
  // Pending messages to put in their wire form again: all of them when the
  // page first hears whether the room is encrypted, and again if a room
  // taken for plain turns out encrypted (a node of a cluster can take a
  // room for plain until it learns otherwise). None was sent on this
  // socket yet: sends wait for `joined`.
  const reseal = !r.crypt.known || (!r.crypt.info && Boolean(frame.encryption));
  // Before the history: its texts are envelopes in an encrypted room.
  setUpEncryption(r, frame.encryption, frame.history);
  setMuted(r, frame.muted_until ?? null);
  r.joined = true;
  r.needsName = null;
  conn.attempt = 0;
  r.members = new Map();
  for (const name of frame.members) r.members.set(name, (r.members.get(name) || 0) + 1);
  // A busy room lists only its first names; the count is the server's.
  renderMembers(r, frame.member_count > frame.members.length ? frame.member_count : undefined);
  if (r.epoch !== null && frame.epoch !== r.epoch) forgetMessages(r);
  r.epoch = frame.epoch;
  const rejoin = r.lastId > 0;
  const floor = r.seenThrough; // nothing is missing up to here
  // Unread, in a room off screen: what came since it was last on screen
  // (on an earlier visit), or since this socket's predecessor dropped.
  const seen = rejoin ? floor : lastSeen(r.name, frame.epoch);
  const placed = [];
  r.list.setAttribute("aria-busy", "true");
  for (const m of frame.history) {
    const el = addMessage(r, m);
    if (el && seen !== null && m.id > seen) placed.push(el);
  }
  r.list.removeAttribute("aria-busy");
  missed(r, placed);
  // What was waiting for an answer on the old socket may be tried again.
  resumeAll(r);
  if (!rejoin) {
    r.moreOlder = frame.truncated;
    markHistoryStart(r);
    settleQuotes(r);
    r.seenThrough = r.lastId;
    scrollToBottom(r);
  } else if (frame.truncated) {
    // More was missed than one page (or the history could not be read):
    // page backwards from the first one received until the gap closes.
    requestHistory(r, { purpose: "gap", floor }, frame.history[0]?.id);
  } else {
    r.seenThrough = r.lastId;
  }
  // Anything still pending was never confirmed on this socket: send it
  // (again). The server recognises a resent nonce and stores it once.
  for (const [nonce, sent] of r.outbox) {
    // One still being encrypted goes out when that ends.
    if (reseal) {
      sent.wire = null;
      seal(r, nonce, sent);
    } else if (sent.wire !== null && sent.socket !== conn.socket) sendMessage(r, nonce, sent);
  }
  if (r === current()) {
    renderStatus();
    saveSeen(r);
  }
  renderRooms();
}

function historyPage(r, frame) {
  const request = r.historyRequest;
  r.historyRequest = null;
  const list = r.list;
  const keep = list.scrollHeight - list.scrollTop;
  list.setAttribute("aria-busy", "true");
  const placed = frame.messages.map((m) => addMessage(r, m)).filter(Boolean);
  list.removeAttribute("aria-busy");
  if (request?.purpose === "gap") missed(r, placed);
  if (request?.purpose === "older" || request?.purpose === "jump") {
    r.moreOlder = frame.messages.length > 0;
    markHistoryStart(r);
    settleQuotes(r);
    if (r === current()) list.scrollTop = list.scrollHeight - keep; // no jump
    // Looking for a reply's original: here now, or one more page.
    if (request.purpose === "jump") continueJump(r, request);
  } else if (request?.purpose === "gap") {
    const first = frame.messages[0]?.id;
    if (first !== undefined && first > request.floor + 1) requestHistory(r, request, first);
    else r.seenThrough = r.lastId; // the gap is closed
  }
}

// ---- sending -----------------------------------------------------------------

function submit() {
  const r = current();
  const text = els.text.value;
  if (text.trim() === "") return;
  const problem = tooLong(r, text);
  if (problem) {
    els.note.textContent = problem;
    return;
  }
  if (sendBlocker(r)) return;
  conn.nonceSeq += 1;
  const nonce = `${Date.now().toString(36)}-${conn.nonceSeq}`;
  // A reply names the message it answers (and keeps it when sent again).
  const replyTo = replyTarget(r);
  const sent = { plain: text, wire: null, replyTo, socket: null };
  r.outbox.set(nonce, sent);
  seal(r, nonce, sent);
  endReply(r);
  const el = messageElement(r, { user: myName, text, reply_to: replyTo }, { pending: true });
  r.pending.set(nonce, el);
  r.list.append(el);
  regroup(el);
  scrollToBottom(r);
  els.text.value = "";
  els.note.textContent = "";
  // Sending ends "typing": the next keystroke announces it again.
  r.lastTypingSent = 0;
  autosize();
}

/// Puts a pending message in the form it travels in, then sends it: an
/// envelope in an encrypted room, the text as typed in a plain one. Until
/// the room's first `joined` says which it is, the message waits: nothing
/// readable leaves the page for a room that may be encrypted.
function seal(r, nonce, sent) {
  if (!r.crypt.known) return;
  // What could not be checked when it was typed: whether this page may send
  // here (a key, a secure context, a mute), and the size once encrypted.
  const why = sendBlocker(r) || tooLong(r, sent.plain);
  if (why) {
    giveUp(r, nonce, why);
  } else if (r.crypt.info) {
    r.sending = r.sending.then(() => encryptAndSend(r, nonce, sent));
  } else {
    sent.wire = sent.plain;
    sendMessage(r, nonce, sent);
  }
}

function giveUp(r, nonce, why) {
  const { el } = settle(r, nonce);
  if (!el) return; // settled meanwhile (put out of the room)
  markFailed(el);
  if (r === current()) els.note.textContent = why;
}

async function encryptAndSend(r, nonce, sent) {
  // The key may have turned out wrong while this waited (an invite link's).
  const why = sendBlocker(r);
  if (why) {
    giveUp(r, nonce, why);
    return;
  }
  try {
    sent.wire = await e2e.encrypt(await r.crypt.cryptoKey, r.name, sent.plain);
  } catch {
    giveUp(r, nonce, "The message could not be encrypted, so it was not sent.");
    return;
  }
  // Unless it was given up meanwhile. If the room is not joined now, its
  // next `joined` sends it.
  if (r.outbox.get(nonce) === sent) sendMessage(r, nonce, sent);
}

/// Sends a pending message, once per socket, into a room joined on it;
/// otherwise the room's next `joined` does.
function sendMessage(r, nonce, sent) {
  if (!r.joined) return;
  const frame = { type: "send_message", room: r.name, text: sent.wire, nonce };
  if (sent.replyTo !== undefined) frame.reply_to = sent.replyTo;
  if (send(frame)) sent.socket = conn.socket;
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
  const r = current();
  const now = Date.now();
  // Someone watching unseen does not type in sight (the server drops it anyway).
  if (r.joined && !r.hidden && now - r.lastTypingSent > 2000) {
    r.lastTypingSent = now;
    send({ type: "typing", room: r.name });
  }
});

onList("scroll", (event, r) => {
  if (r !== current()) return;
  if (atBottom(r)) hidePill(r);
  if (r.list.scrollTop < 60 && r.moreOlder && !r.historyRequest && r.joined && r.oldestId) {
    requestHistory(r, { purpose: "older" }, r.oldestId);
  }
});

els.copy.addEventListener("click", async () => {
  const r = current();
  // A link room's invite carries its key; a passphrase room's does not.
  const withKey = r.crypt.info?.key === "link" && r.crypt.key;
  const link = withKey ? e2e.inviteLink(location.origin, r.name, r.crypt.key) : `${location.origin}/chat/${r.name}`;
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
  if (open) setPanel(false); // one panel at a time on a phone
});

// ---- the name ------------------------------------------------------------------

/// Who this page is, in the header: a guest's name (an account's is there already).
function showWhoAmI() {
  if (!ACCOUNT && els.whoami) els.whoami.textContent = myName;
}

// Without a name there is nothing to join: the dialog cannot be dismissed.
els.dialog.addEventListener("cancel", (event) => {
  if (!myName || current().needsName) event.preventDefault();
});

function askForName(message) {
  els.nameError.textContent = message || "";
  els.nameInput.value = myName;
  if (!els.dialog.open) els.dialog.showModal();
}

// A room that refused the name, brought on screen: asked for now.
document.addEventListener("parlor:switched", ({ detail: r }) => {
  if (r.needsName) askForName(r.needsName);
});

els.nameForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = els.nameInput.value.trim();
  // Remember the name in the session cookie, as the home page does.
  const response = await fetch("/create_room", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ room: current().name, name }),
  });
  if (!response.ok) {
    els.nameError.textContent = (await response.json()).message;
    return;
  }
  setMyName(name);
  showWhoAmI();
  els.dialog.close();
  // One name in every room: each is joined (again) under it.
  if (conn.socket) joinAll();
  else connect();
});

showWhoAmI();
if (myName) connect();
else askForName("");
