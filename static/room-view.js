// The room page around its messages, drawn from a room's state: texts with
// their formatting, the message list's scrolling, notices, the title, the
// members, who is typing, the connection's status and whether the composer
// can send. What belongs to the page (title, members, typing, status,
// composer) shows the current room's; a room off screen keeps its state
// until it is shown (room-sidebar.js draws it all again then).
// The messages themselves are room-messages.js.
import * as e2e from "./e2e.js";
import { MAX_BYTES, myName, els, conn, current } from "./room-state.js";
import { formatText } from "./format.js";

const onScreen = (r) => r === current();

// ---- rendering -------------------------------------------------------------

// Text with its formatting, links and mentions (format.js): DOM nodes,
// never parsed HTML. The one place message texts become DOM, for plain
// rooms and decrypted texts alike.
export function richText(r, text) {
  const others = [...r.members.keys()].filter((name) => name !== myName);
  return formatText(text, { me: myName, names: others });
}

/// Whether the reader is at the end of `r`'s list (for a room off screen:
/// whether they were when they left it).
export function atBottom(r = current()) {
  if (!onScreen(r)) return r.anchor === null;
  const m = r.list;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 40;
}

export function scrollToBottom(r = current()) {
  if (onScreen(r)) r.list.scrollTop = r.list.scrollHeight;
  else r.anchor = null;
  hidePill(r);
}

let pill = null;
export function showPill(r = current()) {
  r.pill = true;
  if (!onScreen(r) || pill) return;
  pill = document.createElement("button");
  pill.type = "button";
  pill.className = "new-pill";
  pill.textContent = "New messages ↓";
  pill.addEventListener("click", () => scrollToBottom());
  els.conversation.append(pill);
}
export function hidePill(r = current()) {
  r.pill = false;
  if (!onScreen(r)) return;
  pill?.remove();
  pill = null;
}

/// The pill as the room on screen has it (after switching rooms).
export function renderPill() {
  pill?.remove();
  pill = null;
  if (current().pill) showPill(current());
}

// ---- notices, title, members, typing, status -------------------------------

export function notice(r, text) {
  const p = document.createElement("p");
  p.className = "notice";
  p.textContent = text;
  const wasAtBottom = atBottom(r);
  r.list.append(p);
  if (wasAtBottom) scrollToBottom(r);
}

/// `(3) #room · Parlor` with 3 messages of the room on screen unread;
/// `(3, @) …` when one of them mentions this reader.
export function updateTitle() {
  const r = current();
  const base = `#${r.name} · Parlor`;
  if (r.unread === 0) document.title = base;
  else document.title = `(${r.unread}${r.unreadMention ? ", @" : ""}) ${base}`;
}

/// `total`: the server's count of connections, when it sent one (a busy
/// room's names are kept once each, however many tabs share them).
export function renderMembers(r, total) {
  r.memberTotal = total;
  drawMembers(r);
}

/// The member list as `r` has it (the last total the server sent, if any).
export function drawMembers(r) {
  if (!onScreen(r)) return;
  els.members.replaceChildren();
  const names = [...r.members.keys()].sort((a, b) => a.localeCompare(b));
  for (const name of names) {
    const li = document.createElement("li");
    li.textContent = name === myName ? `${name} (you)` : name;
    els.members.append(li);
  }
  const count = r.memberTotal ?? [...r.members.values()].reduce((a, b) => a + b, 0);
  els.memberCount.textContent = `(${count})`;
  els.membersToggle.textContent = `Members (${count})`;
}

export function renderTyping(r) {
  if (!onScreen(r)) return;
  const names = [...r.typers.keys()];
  els.typing.textContent =
    names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…`;
}

/// The socket's state (null: open), as the status shows it for every room
/// not put out of.
export function setConnection(down) {
  conn.down = down;
  renderStatus();
}

/// The status of the room on screen: put out of it, the socket's state
/// while it is not open, joining, or connected.
export function renderStatus() {
  const r = current();
  let text = "connected";
  let kind = "online";
  if (r.removed) [text, kind] = [r.removed, "offline"];
  else if (conn.down) [text, kind] = [conn.down.text, conn.down.kind];
  else if (!r.joined) [text, kind] = ["connecting…", "connecting"];
  els.status.textContent = text;
  els.status.className = `status ${kind}`;
  updateComposer();
}

/// Why `text` is too long to send in `r` (or to be a message's new text), or "".
export function tooLong(r, text) {
  // The server's limit counts what is sent: in an encrypted room, the
  // envelope, about a third longer than the text.
  if (r.crypt.info) {
    return e2e.envelopeBytes(text) > MAX_BYTES
      ? `Message is too long (limit ${MAX_BYTES} bytes once encrypted, which adds about a third).`
      : "";
  }
  return new TextEncoder().encode(text).length > MAX_BYTES ? `Message is too long (limit ${MAX_BYTES} bytes).` : "";
}

/// Why this page cannot send in `r` now, or "".
export function sendBlocker(r = current()) {
  // Disconnected is no reason: what is sent waits and goes out (once) on
  // reconnecting. Being put out of the room is.
  if (r.removed) return `You can't send here: ${r.removed}.`;
  const crypt = r.crypt;
  if (crypt.info && !e2e.available()) return `You can't send here: ${e2e.NEEDS_HTTPS}`;
  const mutedFor = r.mutedUntil - Date.now();
  if (mutedFor > 0) {
    const minutes = Math.ceil(mutedFor / 60000);
    return `You can't send here: an admin muted you in this room for ${minutes} more minute${minutes === 1 ? "" : "s"}.`;
  }
  if (crypt.info && !crypt.key) {
    const what = crypt.info.key === "passphrase" ? "passphrase" : "invite link";
    return `You can't send here: this room is end-to-end encrypted and this page does not have its ${what}.`;
  }
  if (crypt.downgraded) {
    return "You can't send here: this browser holds an end-to-end key for this room, but the server says the room is not encrypted, so nothing is sent readable.";
  }
  return "";
}

/// An admin's mute in `r` (until `until`, an ISO time; null: lifted), shown
/// before anyone types: the composer is off, and says for how long, minute
/// by minute, until the mute runs out.
export function setMuted(r, until) {
  r.mutedUntil = until ? Date.parse(until) : 0;
  clearInterval(r.muteTimer);
  r.muteTimer = null;
  if (r.mutedUntil > Date.now()) {
    r.muteTimer = setInterval(() => {
      if (r.mutedUntil <= Date.now()) {
        clearInterval(r.muteTimer);
        r.muteTimer = null;
      }
      if (onScreen(r)) updateComposer();
    }, 15000);
  }
  if (onScreen(r)) updateComposer();
}

/// The composer as tall as its text.
export function autosize() {
  els.text.style.height = "auto";
  els.text.style.height = `${els.text.scrollHeight}px`;
}

/// The composer as the room on screen allows.
export function updateComposer() {
  const blocker = sendBlocker();
  els.text.disabled = blocker !== "";
  els.send.disabled = blocker !== "";
  if (blocker) els.note.textContent = blocker;
  else if (els.note.textContent.startsWith("You can't send")) els.note.textContent = "";
}
