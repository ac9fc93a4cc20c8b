// The room page: one WebSocket speaking docs/protocol.md. Everything from the
// network is inserted as text (textContent), never as HTML. In an end-to-end
// encrypted room, texts are encrypted here before sending and decrypted here
// on arrival (static/e2e.js); the server only ever has ciphertext.
//
// This module is the entry point (templates/room.html loads it): the
// connection, the protocol's frames, sending, and the name. The rest of the
// page, each module importing only those listed before it (and e2e.js):
//   room-state.js     what the server put on the page, its elements, the state
//   format.js         formatting, links and mentions as DOM (imports nothing)
//   room-view.js      texts as DOM, scrolling, notices, the title, members,
//                     typing, the status and whether the composer can send
//   room-alerts.js    texts shown, mentions, unread counts and notifications
//   room-e2e.js       the room's key, placeholders, decrypting texts
//   room-parts.js     a message's quote, "(edited)", reactions and buttons
//   room-messages.js  each message's element and its place in the list
//   room-actions.js   reacting, replying, editing and deleting
import * as e2e from "./e2e.js";
import { ROOM, myName, setMyName, els, state, crypt, send, requestHistory } from "./room-state.js";
import {
  atBottom,
  scrollToBottom,
  hidePill,
  notice,
  renderMembers,
  renderTyping,
  setStatus,
  sendBlocker,
  setMuted,
  tooLong,
} from "./room-view.js";
import { setUpEncryption } from "./room-e2e.js";
import { messageElement, regroup, settle, markFailed, addMessage, markHistoryStart } from "./room-messages.js";
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

// ---- the connection ----------------------------------------------------------

// The ids shown belong to another epoch: drop every confirmed message and
// take the server's history as if the page had just loaded.
function forgetMessages() {
  for (const el of els.messages.querySelectorAll(".msg[data-id], .day")) el.remove();
  state.byId.clear();
  state.lastId = 0;
  state.seenThrough = 0;
  state.oldestId = null;
  state.moreOlder = true;
  state.deleted.clear();
  endReply(); // its id may be given to another message now
  markHistoryStart();
  notice("the server lost track of this room's latest messages; history was reloaded");
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws`);
  state.socket = socket;
  setStatus(state.attempt === 0 ? "connecting…" : "reconnecting…", "connecting");
  els.reconnect.hidden = true;
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
    state.reconnectTimer = setTimeout(connect, delay);
    els.reconnect.hidden = false;
  });
}

els.reconnect.addEventListener("click", () => {
  clearTimeout(state.reconnectTimer);
  connect();
});

/// Out of the room for good on this page: say why, and do not rejoin by
/// ourselves.
function leaveForGood(why, status) {
  state.removed = true;
  notice(why);
  setStatus(status, "offline");
  state.socket?.close();
}

function handle(frame) {
  switch (frame.type) {
    case "joined": {
      // Before the history: its texts are envelopes in an encrypted room.
      setUpEncryption(frame.encryption);
      setMuted(frame.muted_until ?? null);
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
      // What was waiting for an answer on the old socket may be tried again.
      resumeAll();
      if (!reconnect) {
        state.moreOlder = frame.truncated;
        markHistoryStart();
        settleQuotes();
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
          if (sent.wire !== null) sendMessage(nonce, sent);
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
      if (request?.purpose === "older" || request?.purpose === "jump") {
        state.moreOlder = frame.messages.length > 0;
        markHistoryStart();
        settleQuotes();
        els.messages.scrollTop = els.messages.scrollHeight - keep; // no jump
        // Looking for a reply's original: here now, or one more page.
        if (request.purpose === "jump") continueJump(request);
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
      // Kept out for a while after a kick: reconnecting would only be
      // refused again.
      else if (frame.code === "kicked") leaveForGood(frame.message, "removed from the room");
      else els.note.textContent = actionFailed(frame) ?? frame.message;
      break;
    case "muted":
      setMuted(frame.until);
      break;
    case "message_deleted": {
      const el = state.byId.get(frame.id);
      if (el) {
        const next = el.nextElementSibling;
        el.remove();
        state.byId.delete(frame.id);
        if (next) regroup(next);
      }
      messageGone(frame.id);
      break;
    }
    case "message_edited":
    case "reaction_added":
    case "reaction_removed":
      handleRevision(frame);
      break;
    case "kicked":
      leaveForGood("An admin removed you from this room.", "removed from the room");
      break;
    case "room_closed":
      leaveForGood("An admin closed this room.", "room closed");
      break;
    default:
      break;
  }
}

// ---- sending -----------------------------------------------------------------

function submit() {
  const text = els.text.value;
  if (text.trim() === "") return;
  const problem = tooLong(text);
  if (problem) {
    els.note.textContent = problem;
    return;
  }
  if (sendBlocker()) return;
  state.nonceSeq += 1;
  const nonce = `${Date.now().toString(36)}-${state.nonceSeq}`;
  // A reply names the message it answers (and keeps it when sent again).
  const replyTo = replyTarget();
  const sent = { plain: text, wire: crypt.info ? null : text, replyTo };
  state.outbox.set(nonce, sent);
  if (crypt.info) state.sending = state.sending.then(() => encryptAndSend(nonce, sent));
  else sendMessage(nonce, sent);
  endReply();
  const el = messageElement({ user: myName, text, reply_to: replyTo }, { pending: true });
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
  if (state.outbox.get(nonce) === sent) sendMessage(nonce, sent);
}

function sendMessage(nonce, sent) {
  const frame = { type: "send_message", room: ROOM, text: sent.wire, nonce };
  if (sent.replyTo !== undefined) frame.reply_to = sent.replyTo;
  send(frame);
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
  setMyName(name);
  els.dialog.close();
  if (state.socket) send({ type: "join_room", room: ROOM, name: myName });
  else connect();
});

if (myName) connect();
else askForName("");
