// What people do to messages: react, reply, edit and delete (docs/protocol.md,
// `edit_message`, `delete_message`, `add_reaction`, `remove_reaction`), and
// what the server says about it (`message_edited`, `reaction_added`,
// `reaction_removed`, the deletions' quotes, and the errors). The buttons are
// built by room-parts.js; one listener on the list handles them all.
//
// The server decides whose a message is: `own` (the sender's name is this
// page's) only chooses which buttons to offer, and a refusal (`not_yours`)
// is a short note.
//
// What the reader does happens in the room on screen (`current()`); what
// the server says names its room, on screen or not.
import * as e2e from "./e2e.js";
import { ADMIN, myName, els, current, rooms, onList, send, requestHistory } from "./room-state.js";
import { sendBlocker, tooLong } from "./room-view.js";
import { showBody, shownText } from "./room-alerts.js";
import { fillEncryptedBody } from "./room-e2e.js";
import {
  applyReaction,
  fillQuote,
  isGone,
  markEdited,
  pickerElement,
  reacted,
  refreshQuotes,
  snippetOf,
} from "./room-parts.js";

// A phone (or any screen without hover): a message's actions show when it is
// tapped, or through its "⋯".
const TOUCH = window.matchMedia("(max-width: 640px), (hover: none)");

const note = (text) => (els.note.textContent = text);
/// A note about room `r`: only while it is on screen.
const noteIn = (r, text) => r === current() && note(text);
/// A new request: what an earlier one was told is no answer to it (why
/// the composer is off stays).
const freshNote = (r) => r === current() && !els.note.textContent.startsWith("You can't send") && note("");
/// The room on screen's list.
const list = () => current().list;
const bodyOf = (el) => el.querySelector(":scope > .body");
const idOf = (el) => Number(el.dataset.id);

function makeButton(className, text, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  b.dataset.action = action;
  return b;
}

// What this page asked last, for the errors that do not say what they answer.
let lastRequest = "";

// ---- the list's clicks ------------------------------------------------------------

onList("click", (event) => {
  const el = event.target.closest(".msg[data-id]");
  if (!el) return;
  const control = event.target.closest("[data-action]");
  if (!control) {
    // A tap on a message (not on a link, nor while selecting its text)
    // shows its actions, on a touch screen.
    if (TOUCH.matches && !event.target.closest("a, button, textarea, pre") && String(getSelection()) === "") toggleOpen(el);
    return;
  }
  const action = control.dataset.action;
  if (action === "more") toggleOpen(el, true);
  else if (action === "react") togglePicker(el);
  else if (action === "pick") {
    toggleReaction(el, control.dataset.emoji);
    closePicker(el, true);
  } else if (action === "toggle-reaction") toggleReaction(el, control.dataset.emoji);
  else if (action === "reply") startReply(el);
  else if (action === "edit") startEdit(el);
  else if (action === "save-edit") saveEdit(el);
  else if (action === "cancel-edit") stopEdit(el, true);
  else if (action === "delete") askDelete(el);
  else if (action === "confirm-delete") confirmDelete(el);
  else if (action === "cancel-delete") closeConfirm(el, true);
  else if (action === "quote") jumpTo(Number(control.dataset.replyTo));
});

onList("keydown", (event) => {
  if (event.key !== "Escape") return;
  const el = event.target.closest(".msg[data-id]");
  if (!el) return;
  if (el.querySelector(":scope > .emoji-picker")) closePicker(el, true);
  else if (el.querySelector(":scope > .confirm")) closeConfirm(el, true);
  else if (el.classList.contains("open")) toggleOpen(el, true);
  else return;
  event.preventDefault();
});

// Clicking elsewhere closes an open picker and a phone's open actions.
document.addEventListener("click", (event) => {
  for (const el of list().querySelectorAll(".msg.open, .msg:has(> .emoji-picker)")) {
    if (el.contains(event.target)) continue;
    closePicker(el);
    if (el.classList.contains("open")) toggleOpen(el);
  }
});

/// A message's actions shown (a phone's tap, or its "⋯") or hidden again.
function toggleOpen(el, byKeyboard = false) {
  const open = !el.classList.contains("open");
  for (const other of list().querySelectorAll(".msg.open")) {
    if (other !== el) setOpen(other, false);
  }
  setOpen(el, open);
  if (byKeyboard) el.querySelector(open ? ".msg-actions button" : ".more")?.focus();
}

function setOpen(el, open) {
  el.classList.toggle("open", open);
  el.querySelector(".more")?.setAttribute("aria-expanded", String(open));
  if (!open) closePicker(el);
}

// ---- reactions ----------------------------------------------------------------------

function togglePicker(el) {
  if (el.querySelector(":scope > .emoji-picker")) return closePicker(el, true);
  closeConfirm(el);
  const picker = pickerElement(el);
  el.querySelector(":scope > .msg-tools").before(picker);
  picker.querySelector("button").focus();
  picker.scrollIntoView({ block: "nearest" });
}

function closePicker(el, refocus = false) {
  const picker = el.querySelector(":scope > .emoji-picker");
  if (!picker) return;
  const hadFocus = picker.contains(document.activeElement);
  picker.remove();
  if (refocus || hadFocus) el.querySelector('[data-action="react"]')?.focus();
}

/// Adds this reader's reaction, or takes it back if it is there: the
/// server's `reaction_added` / `reaction_removed` then change the chips.
function toggleReaction(el, emoji) {
  const r = current();
  if (r.removed) return note(`You can't react here: ${r.removed}.`);
  const type = reacted(el, emoji) ? "remove_reaction" : "add_reaction";
  lastRequest = "reaction";
  if (!send({ type, room: r.name, id: idOf(el), emoji })) note("Not connected: the reaction was not sent. Try again in a moment.");
}

// ---- replies ------------------------------------------------------------------------

// Above the composer while replying: "Replying to Ann: …" and a ×.
const replyBar = document.createElement("div");
replyBar.id = "reply-bar";
replyBar.className = "reply-bar";
replyBar.hidden = true;
const replyLabel = document.createElement("span");
replyLabel.className = "reply-label";
const replyCancel = document.createElement("button");
replyCancel.type = "button";
replyCancel.className = "ghost reply-cancel";
replyCancel.textContent = "×";
replyCancel.setAttribute("aria-label", "Cancel reply");
replyCancel.title = "Cancel reply (Esc)";
replyBar.append(replyLabel, replyCancel);
els.composer.before(replyBar);
replyCancel.addEventListener("click", () => {
  endReply(current());
  els.text.focus();
});

// Each room has its own reply in the making (`r.replying`: the id of the
// message the composer answers there).
function startReply(el) {
  current().replying = idOf(el);
  renderReplyBar();
  setOpen(el, false);
  els.text.focus();
}

/// The reply bar as the room on screen has it.
export function renderReplyBar() {
  const { replying, byId } = current();
  replyBar.hidden = replying === null;
  if (replying === null) return;
  const original = byId.get(replying);
  if (!original) {
    // Deleted meanwhile: the reply still goes, and its quote will say so.
    replyLabel.replaceChildren("Replying to a deleted message");
    return;
  }
  const who = document.createElement("strong");
  who.textContent = original.dataset.user;
  const snippet = document.createElement("span");
  snippet.className = "reply-snippet";
  snippet.textContent = snippetOf(original);
  replyLabel.replaceChildren("Replying to ", who, ": ", snippet);
}

/// The id the next message in `r` answers, if any.
export function replyTarget(r) {
  return r.replying ?? undefined;
}

export function endReply(r) {
  r.replying = null;
  if (r === current()) renderReplyBar();
}

// A quote (or the reply bar) follows its original: decrypted, edited, placed
// by older history, deleted.
document.addEventListener("parlor:quotes", ({ detail: { r, id } }) => {
  if (r === current() && id === r.replying) renderReplyBar();
});
onList("parlor:shown", (event, r) => {
  const el = event.target.closest(".msg[data-id]");
  if (el) refreshQuotes(r, idOf(el));
});

/// After a page of `r`'s history: quotes whose original is still missing
/// may now be known to be deleted (the history reached past them).
export function settleQuotes(r) {
  for (const quote of r.list.querySelectorAll(".quote.missing")) fillQuote(r, quote);
}

// Showing a quote's original: scrolled to and highlighted, after loading
// older history pages until it is there (or the room's start is).
function jumpTo(id, r = current(), tries = 0) {
  if (r !== current()) return; // the reader went elsewhere meanwhile
  const el = r.byId.get(id);
  if (el) return highlight(el);
  if (isGone(r, id)) return note("The original message was deleted.");
  if (r.historyRequest) {
    // Another page is on its way: look again once it is here.
    if (tries < 40) setTimeout(() => jumpTo(id, r, tries + 1), 250);
    return;
  }
  if (requestHistory(r, { purpose: "jump", target: id }, r.oldestId ?? undefined)) note("Loading older messages…");
  else note("Not connected: older messages can't be loaded now.");
}

/// A page of `r`'s history asked for by `jumpTo` is in.
export function continueJump(r, request) {
  const el = r.byId.get(request.target);
  if (el) {
    if (r !== current()) return;
    if (els.note.textContent === "Loading older messages…") note("");
    return highlight(el);
  }
  if (r.moreOlder && r.oldestId !== null && request.target < r.oldestId) {
    requestHistory(r, request, r.oldestId);
    return;
  }
  r.deleted.add(request.target);
  refreshQuotes(r, request.target);
  noteIn(r, "The original message was deleted.");
}

function highlight(el) {
  el.scrollIntoView({ block: "center" });
  el.classList.remove("flash");
  void el.offsetWidth; // starts the animation again
  el.classList.add("flash");
  setTimeout(() => el.classList.remove("flash"), 2500);
}

// ---- editing ------------------------------------------------------------------------

// Each room's edits sent and not yet confirmed: `r.editsInFlight`.

function startEdit(el) {
  const existing = el.querySelector(":scope > .editor textarea");
  if (existing) return existing.focus();
  const text = shownText(bodyOf(el));
  if (text === undefined) return note("This message can't be edited until it is decrypted.");
  const blocker = sendBlocker();
  if (blocker) return note(blocker);
  setOpen(el, false);
  closeConfirm(el);
  const editor = document.createElement("div");
  editor.className = "editor";
  const box = document.createElement("textarea");
  box.className = "edit-text";
  box.setAttribute("aria-label", "Edit message");
  box.setAttribute("aria-describedby", `edit-help-${el.dataset.id}`);
  box.value = text;
  box.rows = 1;
  const help = document.createElement("div");
  help.className = "edit-help";
  const hint = document.createElement("span");
  hint.id = `edit-help-${el.dataset.id}`;
  hint.textContent = "Enter saves · Shift+Enter new line · Esc cancels";
  help.append(hint, makeButton("ghost small", "Cancel", "cancel-edit"), makeButton("small", "Save", "save-edit"));
  editor.append(box, help);
  bodyOf(el).hidden = true;
  bodyOf(el).after(editor);
  el.classList.add("editing");
  const fit = () => {
    box.style.height = "auto";
    box.style.height = `${box.scrollHeight}px`;
  };
  box.addEventListener("input", fit);
  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      saveEdit(el);
    } else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation();
      stopEdit(el, true);
    }
  });
  fit();
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
  editor.scrollIntoView({ block: "nearest" });
}

function stopEdit(el, toComposer = false) {
  el.querySelector(":scope > .editor")?.remove();
  const body = bodyOf(el);
  if (body) body.hidden = false;
  el.classList.remove("editing");
  if (toComposer && !els.text.disabled) els.text.focus();
}

async function saveEdit(el) {
  const box = el.querySelector(":scope > .editor textarea");
  if (!box || box.disabled) return;
  const text = box.value;
  const id = idOf(el);
  if (text === shownText(bodyOf(el))) return stopEdit(el, true);
  if (text.trim() === "") return note("A message can't be empty: delete it instead.");
  const r = current();
  const problem = tooLong(r, text) || sendBlocker(r);
  if (problem) return note(problem);
  box.disabled = true;
  el.querySelector(":scope > .editor").classList.add("saving");
  let wire = text;
  if (r.crypt.info) {
    try {
      wire = await e2e.encrypt(await r.crypt.cryptoKey, r.name, text);
    } catch {
      box.disabled = false;
      return noteIn(r, "The new text could not be encrypted, so it was not saved.");
    }
  }
  r.editsInFlight.set(id, { plain: text, wire });
  lastRequest = "edit";
  freshNote(r);
  if (!send({ type: "edit_message", room: r.name, id, text: wire })) {
    r.editsInFlight.delete(id);
    resumeEditor(el);
    noteIn(r, "Not connected: the edit was not saved. Try again once reconnected.");
  }
}

function resumeEditor(el) {
  const editor = el.querySelector(":scope > .editor");
  if (!editor) return;
  editor.classList.remove("saving");
  editor.querySelector("textarea").disabled = false;
  editor.querySelector("textarea").focus();
}

// Slack's shortcut: ArrowUp in an empty composer edits one's last message;
// Escape there drops the reply being written.
els.text.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey || event.isComposing) return;
  if (event.key === "Escape" && current().replying !== null) {
    event.preventDefault();
    endReply(current());
  } else if (event.key === "ArrowUp" && els.text.value === "") {
    const own = list().querySelectorAll(".msg.own[data-id]");
    if (own.length === 0) return;
    event.preventDefault();
    startEdit(own[own.length - 1]);
  }
});

// ---- deleting -----------------------------------------------------------------------

function askDelete(el) {
  if (el.querySelector(":scope > .confirm")) return el.querySelector(".confirm [data-action=cancel-delete]").focus();
  closePicker(el);
  const confirm = document.createElement("div");
  confirm.className = "confirm";
  confirm.setAttribute("role", "group");
  confirm.setAttribute("aria-label", "Confirm deletion");
  const question = document.createElement("span");
  question.textContent = el.classList.contains("own") ? "Delete this message?" : `Delete this message from ${el.dataset.user}?`;
  const cancel = makeButton("ghost small", "Cancel", "cancel-delete");
  confirm.append(question, makeButton("small danger confirm-delete", "Delete", "confirm-delete"), cancel);
  el.querySelector(":scope > .msg-tools").before(confirm);
  cancel.focus();
}

function closeConfirm(el, refocus = false) {
  const confirm = el.querySelector(":scope > .confirm");
  if (!confirm) return;
  confirm.remove();
  if (refocus) el.querySelector('[data-action="delete"]')?.focus();
}

async function confirmDelete(el) {
  const confirm = el.querySelector(":scope > .confirm");
  for (const b of confirm.querySelectorAll("button")) b.disabled = true;
  confirm.classList.add("deleting");
  const id = idOf(el);
  const r = current();
  freshNote(r);
  if (el.classList.contains("own")) {
    lastRequest = "delete";
    if (send({ type: "delete_message", room: r.name, id })) return; // `message_deleted` takes it away
    note("Not connected: the message was not deleted. Try again once reconnected.");
  } else if (ADMIN) {
    // An admin's delete of someone else's message, as the console does it.
    const response = await fetch(`/admin/rooms/${r.name}/messages/${id}`, { method: "DELETE" }).catch(() => null);
    if (response?.ok) return;
    noteIn(r, "Could not delete the message.");
  }
  closeConfirm(el);
}

/// `message_deleted`, once the message left `r`'s list: its quotes say so.
export function messageGone(r, id) {
  if (lastRequest === "delete") lastRequest = "";
  r.deleted.add(id);
  r.editsInFlight.delete(id);
  refreshQuotes(r, id);
}

// ---- what the server says -------------------------------------------------------------

const revisions = new WeakMap(); // .body -> the latest edit shown there (a count)

/// `message_edited`, `reaction_added` and `reaction_removed`, in room `r`.
export async function handleRevision(r, frame) {
  const el = r.byId.get(frame.id);
  if (!el) return; // not shown (older than the history loaded): history brings it as it is
  if (frame.type === "reaction_added" || frame.type === "reaction_removed") {
    if (typeof frame.emoji === "string" && typeof frame.user === "string") {
      applyReaction(el, frame.emoji, frame.user, frame.type === "reaction_added");
      if (frame.user === myName && lastRequest === "reaction") lastRequest = ""; // answered
    }
    return;
  }
  const mine = r.editsInFlight.get(frame.id);
  r.editsInFlight.delete(frame.id);
  if (mine && lastRequest === "edit") lastRequest = "";
  // This page's edit is in: its editor goes. One open elsewhere stays.
  if (mine || el.querySelector(":scope > .editor.saving")) stopEdit(el, document.activeElement?.closest(".msg") === el);
  const body = bodyOf(el);
  const revision = (revisions.get(body) ?? 0) + 1;
  revisions.set(body, revision);
  const crypt = r.crypt;
  if (crypt.info) {
    // Decrypted before it is shown (no "decrypting…" in between); our own
    // edit is known already.
    let plain = mine?.wire === frame.text ? mine.plain : undefined;
    if (plain === undefined && crypt.key) plain = await e2e.decrypt(await crypt.cryptoKey, r.name, frame.text).catch(() => undefined);
    if (revisions.get(body) !== revision) return; // a later edit came meanwhile
    fillEncryptedBody(r, body, frame.text, plain);
  } else {
    showBody(r, body, frame.text);
  }
  markEdited(el, frame.edited_at);
}

const SHORT_NOTES = {
  not_yours: "That message isn't yours: only its author can edit or delete it.",
  unknown_message: "That message is no longer there.",
};

/// An error frame: what to say for it, if these actions have something
/// shorter than the server's message (else null), after undoing what was
/// waiting for an answer (an edit being saved, a deletion confirmed).
export function actionFailed(frame) {
  if (frame.nonce) return frame.code === "unknown_message" ? "The message you replied to is not in this room." : null;
  const kind = lastRequest;
  if (!["edit", "delete", "reaction"].includes(kind)) return null;
  lastRequest = "";
  const r = rooms.get(frame.room);
  if (r) resumeAll(r);
  if (SHORT_NOTES[frame.code]) return SHORT_NOTES[frame.code];
  if (frame.code === "too_large" && kind === "reaction") return "A message can have at most 20 different reactions.";
  return null;
}

/// Anything in `r` waiting for an answer that will not come (an error, or
/// a new socket) can be tried again.
export function resumeAll(r) {
  r.editsInFlight.clear();
  for (const editor of r.list.querySelectorAll(".editor.saving")) resumeEditor(editor.closest(".msg"));
  for (const confirm of r.list.querySelectorAll(".confirm.deleting")) confirm.remove();
}
