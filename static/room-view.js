// The room page around its messages, drawn from the shared state: texts with
// their formatting, the message list's scrolling, notices, the title, the
// members, who is typing, the connection's status and whether the composer
// can send.
// The messages themselves are room-messages.js.
import * as e2e from "./e2e.js";
import { ROOM, MAX_BYTES, myName, els, state, crypt } from "./room-state.js";
import { formatText } from "./format.js";

// ---- rendering -------------------------------------------------------------

// Text with its formatting, links and mentions (format.js): DOM nodes,
// never parsed HTML. The one place message texts become DOM, for plain
// rooms and decrypted texts alike.
export function richText(text) {
  const others = [...state.members.keys()].filter((name) => name !== myName);
  return formatText(text, { me: myName, names: others });
}

export function atBottom() {
  const m = els.messages;
  return m.scrollHeight - m.scrollTop - m.clientHeight < 40;
}

export function scrollToBottom() {
  els.messages.scrollTop = els.messages.scrollHeight;
  hidePill();
}

let pill = null;
export function showPill() {
  if (pill) return;
  pill = document.createElement("button");
  pill.type = "button";
  pill.className = "new-pill";
  pill.textContent = "New messages ↓";
  pill.addEventListener("click", scrollToBottom);
  els.messages.parentElement.append(pill);
}
export function hidePill() {
  pill?.remove();
  pill = null;
}

// ---- notices, title, members, typing, status -------------------------------

export function notice(text) {
  const p = document.createElement("p");
  p.className = "notice";
  p.textContent = text;
  const wasAtBottom = atBottom();
  els.messages.append(p);
  if (wasAtBottom) scrollToBottom();
}

/// `(3) #room · Parlor` with 3 messages unread; `(3, @) …` when one of them
/// mentions this reader.
export function updateTitle() {
  const base = `#${ROOM} · Parlor`;
  if (state.unread === 0) document.title = base;
  else document.title = `(${state.unread}${state.unreadMention ? ", @" : ""}) ${base}`;
}

/// `total`: the server's count of connections, when it sent one (a busy
/// room's names are kept once each, however many tabs share them).
export function renderMembers(total) {
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

export function renderTyping() {
  const names = [...state.typers.keys()];
  els.typing.textContent =
    names.length === 0 ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing…`;
}

export function setStatus(text, kind) {
  els.status.textContent = text;
  els.status.className = `status ${kind}`;
  state.online = kind === "online";
  updateComposer();
}

/// Why `text` is too long to send (or to be a message's new text), or "".
export function tooLong(text) {
  // The server's limit counts what is sent: in an encrypted room, the
  // envelope, about a third longer than the text.
  if (crypt.info) {
    return e2e.envelopeBytes(text) > MAX_BYTES
      ? `Message is too long (limit ${MAX_BYTES} bytes once encrypted, which adds about a third).`
      : "";
  }
  return new TextEncoder().encode(text).length > MAX_BYTES ? `Message is too long (limit ${MAX_BYTES} bytes).` : "";
}

/// Why this page cannot send now, or "".
export function sendBlocker() {
  // Disconnected is no reason: what is sent waits and goes out (once) on
  // reconnecting. Being put out of the room is.
  if (state.removed) return `You can't send here: ${els.status.textContent}.`;
  if (crypt.info && !e2e.available()) return `You can't send here: ${e2e.NEEDS_HTTPS}`;
  const mutedFor = state.mutedUntil - Date.now();
  if (mutedFor > 0) {
    const minutes = Math.ceil(mutedFor / 60000);
    return `You can't send here: an admin muted you in this room for ${minutes} more minute${minutes === 1 ? "" : "s"}.`;
  }
  if (crypt.info && !crypt.key) {
    const what = crypt.info.key === "passphrase" ? "passphrase" : "invite link";
    return `You can't send here: this room is end-to-end encrypted and this page does not have its ${what}.`;
  }
  return "";
}

let muteTimer = null;

/// An admin's mute (until `until`, an ISO time; null: lifted), shown before
/// anyone types: the composer is off, and says for how long, minute by
/// minute, until the mute runs out.
export function setMuted(until) {
  state.mutedUntil = until ? Date.parse(until) : 0;
  clearInterval(muteTimer);
  muteTimer = null;
  if (state.mutedUntil > Date.now()) {
    muteTimer = setInterval(() => {
      if (state.mutedUntil <= Date.now()) {
        clearInterval(muteTimer);
        muteTimer = null;
      }
      updateComposer();
    }, 15000);
  }
  updateComposer();
}

export function updateComposer() {
  const blocker = sendBlocker();
  els.text.disabled = blocker !== "";
  els.send.disabled = blocker !== "";
  if (blocker) els.note.textContent = blocker;
  else if (els.note.textContent.startsWith("You can't send")) els.note.textContent = "";
}
