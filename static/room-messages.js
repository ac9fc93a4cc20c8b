// The messages of the room page: each one's element, and its place in its
// room's list (once each, in id order; our own pending until the server
// confirms them). Every function takes the room (`r`, a state object of
// room-state.js) whose list it changes, on screen or not. An encrypted
// room's texts are filled in by room-e2e.js.
import { myName } from "./room-state.js";
import { atBottom, scrollToBottom, showPill } from "./room-view.js";
import { showBody, arrived } from "./room-alerts.js";
import { fillEncryptedBody } from "./room-e2e.js";
import { fullDate, quoteElement, markEdited, setReactions, toolsElement, refreshQuotes } from "./room-parts.js";

// ---- rendering -------------------------------------------------------------

function localTime(ts) {
  const date = new Date(ts);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/// `plain`: the text of an encrypted message already known (our own).
export function messageElement(r, m, { pending = false, plain } = {}) {
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
  // The full date and time, a hover away.
  if (m.ts && !pending) time.title = fullDate(m.ts);
  meta.append(who, time);
  // A div: a code block inside is a <pre>, which a <p> cannot hold.
  const text = document.createElement("div");
  text.className = "body";
  // In the message before it is filled: a mention marks the whole message.
  el.append(meta);
  // A reply quotes the start of what it answers (room-parts.js).
  if (Number.isInteger(m.reply_to)) el.append(quoteElement(r, m.reply_to));
  el.append(text);
  // A pending message is our own, still as typed.
  if (r.crypt.info && !pending) fillEncryptedBody(r, text, m.text, plain);
  else showBody(r, text, m.text);
  markEdited(el, m.edited_at);
  if (Array.isArray(m.reactions)) setReactions(el, m.reactions);
  // Only a confirmed message (one with an id) can be acted on.
  if (m.id) el.append(toolsElement(m, m.user === myName));
  return el;
}

/// The local day of a message's time, as the separator names it.
function dayLabel(ts) {
  const date = new Date(ts);
  if (Number.isNaN(date.getTime())) return "";
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (date.toDateString() === today.toDateString()) return "Today";
  if (date.toDateString() === yesterday.toDateString()) return "Yesterday";
  return date.toLocaleDateString([], { weekday: "long", year: "numeric", month: "long", day: "numeric" });
}

/// The message before `el` in the list (notices and separators between
/// them are passed over).
function previousMessage(el) {
  let prev = el.previousElementSibling;
  while (prev && !prev.classList.contains("msg")) prev = prev.previousElementSibling;
  return prev;
}

/// A message's place among its neighbours: the first of a local day gets a
/// separator naming the day (kept right before it, and taken away when an
/// earlier message of that day arrives above it); consecutive messages
/// from one sender within five minutes share a header.
export function regroup(el) {
  const label = el.dataset.ts ? dayLabel(el.dataset.ts) : "";
  const before = previousMessage(el);
  const newDay = label !== "" && (!before || (before.dataset.ts && dayLabel(before.dataset.ts) !== label));
  let separator = el.previousElementSibling?.classList.contains("day") ? el.previousElementSibling : null;
  if (newDay) {
    if (!separator) {
      separator = document.createElement("div");
      separator.className = "day";
      separator.setAttribute("role", "separator");
      el.before(separator);
    }
    separator.textContent = label;
  } else if (separator) {
    separator.remove();
  }
  const prev = el.previousElementSibling;
  const sameSender = !newDay && prev && prev.classList.contains("msg") && prev.dataset.user === el.dataset.user;
  const close = sameSender && (!el.dataset.ts || !prev.dataset.ts || new Date(el.dataset.ts) - new Date(prev.dataset.ts) < 5 * 60 * 1000);
  el.classList.toggle("grouped", Boolean(close));
}

/// Above the oldest message, once nothing older exists: the start of the
/// room, said so (instead of a list that might still go on).
export function markHistoryStart(r) {
  let marker = r.list.querySelector(".history-start");
  if (r.moreOlder) {
    marker?.remove();
    return;
  }
  if (!marker) {
    marker = document.createElement("p");
    marker.className = "history-start";
    marker.textContent = `This is the start of #${r.name}.`;
  }
  r.list.prepend(marker);
}

// ---- placing messages ----------------------------------------------------------

/// The pending message with this nonce, no longer waiting: its element and
/// what was sent.
export function settle(r, nonce) {
  const el = r.pending.get(nonce) ?? r.unconfirmed.get(nonce);
  const sent = r.outbox.get(nonce);
  r.pending.delete(nonce);
  r.unconfirmed.delete(nonce);
  r.outbox.delete(nonce);
  return { el, sent };
}

export function markFailed(el) {
  el.classList.remove("pending", "unconfirmed");
  el.classList.add("failed");
  const time = el.querySelector("time");
  time.textContent = "not sent";
  time.removeAttribute("title");
}

/// A message sent that this page may never hear about again (it was put out
/// of the room first): the server may have stored it, or not.
export function markUnconfirmed(el) {
  el.classList.remove("pending");
  el.classList.add("unconfirmed");
  const time = el.querySelector("time");
  time.textContent = "not confirmed";
  time.title = "Sent, but this page was put out of the room before the server confirmed it: the others may have it, or not.";
}

// Places a confirmed message by id: once, in id order. Its element, if it
// was not shown yet.
export function addMessage(r, m, { live = false } = {}) {
  const { el: pendingEl, sent } = m.nonce ? settle(r, m.nonce) : {};
  if (r.byId.has(m.id)) {
    // Already shown (from history after a reconnect): drop the pending copy,
    // and take the reactions and any edit as they are now.
    pendingEl?.remove();
    catchUp(r, r.byId.get(m.id), m);
    return null;
  }
  const wasAtBottom = atBottom(r);
  let el;
  if (pendingEl) {
    // Our own: in an encrypted room, the text we typed is the one we sent.
    el = messageElement(r, m, { plain: sent?.wire === m.text ? sent.plain : undefined });
    pendingEl.replaceWith(el);
  } else {
    el = messageElement(r, m);
    // Newer than everything shown (the usual case): it goes last, before any
    // pending messages of our own. Older: find its place by id.
    const after =
      m.id > r.lastId
        ? r.list.querySelector(".msg.pending")
        : [...r.list.querySelectorAll(".msg[data-id]")].find((other) => Number(other.dataset.id) > m.id);
    r.list.insertBefore(el, after || null);
  }
  r.byId.set(m.id, el);
  r.deleted.delete(m.id);
  regroup(el);
  // Replies shown before their original (older history) now quote it.
  refreshQuotes(r, m.id);
  if (el.nextElementSibling) regroup(el.nextElementSibling);
  r.lastId = Math.max(r.lastId, m.id);
  if (live && m.id === r.seenThrough + 1) r.seenThrough = m.id;
  r.oldestId = r.oldestId === null ? m.id : Math.min(r.oldestId, m.id);
  if (live) {
    if (m.user === myName || wasAtBottom) scrollToBottom(r);
    else showPill(r);
    arrived(r, el, m, wasAtBottom);
  }
  return el;
}

/// A message shown again by history: its edit and its reactions as the
/// server has them now (what happened while this page was away).
function catchUp(r, el, m) {
  if (Array.isArray(m.reactions)) setReactions(el, m.reactions);
  else if (m.id) setReactions(el, []);
  if (!m.edited_at || m.edited_at === el.dataset.editedAt || el.classList.contains("editing")) return;
  const body = el.querySelector(":scope > .body");
  if (r.crypt.info) fillEncryptedBody(r, body, m.text);
  else showBody(r, body, m.text);
  markEdited(el, m.edited_at);
}
