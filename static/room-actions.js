// What people do to messages: react, reply, edit and delete (docs/protocol.md,
// `edit_message`, `delete_message`, `add_reaction`, `remove_reaction`), and
// what the server says about it (`message_edited`, `reaction_added`,
// `reaction_removed`, the deletions' quotes, and the errors). The buttons are
// built by room-parts.js; one listener on the list handles them all.
//
// The server decides whose a message is: `own` (the sender's name is this
// page's) only chooses which buttons to offer, and a refusal (`not_yours`)
// is a short note.
import * as e2e from "./e2e.js";
import { ROOM, ADMIN, myName, els, state, crypt, send, requestHistory } from "./room-state.js";
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

els.messages.addEventListener("click", (event) => {
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

els.messages.addEventListener("keydown", (event) => {
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
  for (const el of els.messages.querySelectorAll(".msg.open, .msg:has(> .emoji-picker)")) {
    if (el.contains(event.target)) continue;
    closePicker(el);
    if (el.classList.contains("open")) toggleOpen(el);
  }
});

/// A message's actions shown (a phone's tap, or its "⋯") or hidden again.
function toggleOpen(el, byKeyboard = false) {
  const open = !el.classList.contains("open");
  for (const other of els.messages.querySelectorAll(".msg.open")) {
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
  if (state.removed) return note(`You can't react here: ${els.status.textContent}.`);
  const type = reacted(el, emoji) ? "remove_reaction" : "add_reaction";
  lastRequest = "reaction";
  if (!send({ type, room: ROOM, id: idOf(el), emoji })) note("Not connected: the reaction was not sent. Try again in a moment.");
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
  endReply();
  els.text.focus();
});

let replying = null; // the id of the message the composer answers

function startReply(el) {
  replying = idOf(el);
  renderReplyBar();
  setOpen(el, false);
  els.text.focus();
}

function renderReplyBar() {
  replyBar.hidden = replying === null;
  if (replying === null) return;
  const original = state.byId.get(replying);
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

/// The id the next message answers, if any.
export function replyTarget() {
  return replying ?? undefined;
}

export function endReply() {
  replying = null;
  renderReplyBar();
}

// A quote (or the reply bar) follows its original: decrypted, edited, placed
// by older history, deleted.
document.addEventListener("parlor:quotes", (event) => {
  if (event.detail === replying) renderReplyBar();
});
els.messages.addEventListener("parlor:shown", (event) => {
  const el = event.target.closest(".msg[data-id]");
  if (el) refreshQuotes(idOf(el));
});

/// After a page of history: quotes whose original is still missing may now
/// be known to be deleted (the history reached past them).
export function settleQuotes() {
  for (const quote of els.messages.querySelectorAll(".quote.missing")) fillQuote(quote);
}

// Showing a quote's original: scrolled to and highlighted, after loading
// older history pages until it is there (or the room's start is).
function jumpTo(id, tries = 0) {
  const el = state.byId.get(id);
  if (el) return highlight(el);
  if (isGone(id)) return note("The original message was deleted.");
  if (state.historyRequest) {
    // Another page is on its way: look again once it is here.
    if (tries < 40) setTimeout(() => jumpTo(id, tries + 1), 250);
    return;
  }
  if (requestHistory({ purpose: "jump", target: id }, state.oldestId ?? undefined)) note("Loading older messages…");
  else note("Not connected: older messages can't be loaded now.");
}

/// A page of history asked for by `jumpTo` is in.
export function continueJump(request) {
  const el = state.byId.get(request.target);
  if (el) {
    if (els.note.textContent === "Loading older messages…") note("");
    return highlight(el);
  }
  if (state.moreOlder && state.oldestId !== null && request.target < state.oldestId) {
    requestHistory(request, state.oldestId);
    return;
  }
  state.deleted.add(request.target);
  refreshQuotes(request.target);
  note("The original message was deleted.");
}

function highlight(el) {
  el.scrollIntoView({ block: "center" });
  el.classList.remove("flash");
  void el.offsetWidth; // starts the animation again
  el.classList.add("flash");
  setTimeout(() => el.classList.remove("flash"), 2500);
}

// ---- editing ------------------------------------------------------------------------

const editsInFlight = new Map(); // id -> { plain, wire } of an edit sent, not yet confirmed

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
  const problem = tooLong(text) || sendBlocker();
  if (problem) return note(problem);
  box.disabled = true;
  el.querySelector(":scope > .editor").classList.add("saving");
  let wire = text;
  if (crypt.info) {
    try {
      wire = await e2e.encrypt(await crypt.cryptoKey, ROOM, text);
    } catch {
      box.disabled = false;
      return note("The new text could not be encrypted, so it was not saved.");
    }
  }
  editsInFlight.set(id, { plain: text, wire });
  lastRequest = "edit";
  if (!send({ type: "edit_message", room: ROOM, id, text: wire })) {
    editsInFlight.delete(id);
    resumeEditor(el);
    note("Not connected: the edit was not saved. Try again once reconnected.");
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
  if (event.key === "Escape" && replying !== null) {
    event.preventDefault();
    endReply();
  } else if (event.key === "ArrowUp" && els.text.value === "") {
    const own = els.messages.querySelectorAll(".msg.own[data-id]");
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
  if (el.classList.contains("own")) {
    lastRequest = "delete";
    if (send({ type: "delete_message", room: ROOM, id })) return; // `message_deleted` takes it away
    note("Not connected: the message was not deleted. Try again once reconnected.");
  } else if (ADMIN) {
    // An admin's delete of someone else's message, as the console does it.
    const response = await fetch(`/admin/rooms/${ROOM}/messages/${id}`, { method: "DELETE" }).catch(() => null);
    if (response?.ok) return;
    note("Could not delete the message.");
  }
  closeConfirm(el);
}

/// `message_deleted`, once the message left the list: its quotes say so.
export function messageGone(id) {
  if (lastRequest === "delete") lastRequest = "";
  state.deleted.add(id);
  editsInFlight.delete(id);
  refreshQuotes(id);
}

// ---- what the server says -------------------------------------------------------------

const revisions = new WeakMap(); // .body -> the latest edit shown there (a count)

/// `message_edited`, `reaction_added` and `reaction_removed`.
export async function handleRevision(frame) {
  const el = state.byId.get(frame.id);
  if (!el) return; // not shown (older than the history loaded): history brings it as it is
  if (frame.type === "reaction_added" || frame.type === "reaction_removed") {
    if (typeof frame.emoji === "string" && typeof frame.user === "string") {
      applyReaction(el, frame.emoji, frame.user, frame.type === "reaction_added");
      if (frame.user === myName && lastRequest === "reaction") lastRequest = ""; // answered
    }
    return;
  }
  const mine = editsInFlight.get(frame.id);
  editsInFlight.delete(frame.id);
  if (mine && lastRequest === "edit") lastRequest = "";
  // This page's edit is in: its editor goes. One open elsewhere stays.
  if (mine || el.querySelector(":scope > .editor.saving")) stopEdit(el, document.activeElement?.closest(".msg") === el);
  const body = bodyOf(el);
  const revision = (revisions.get(body) ?? 0) + 1;
  revisions.set(body, revision);
  if (crypt.info) {
    // Decrypted before it is shown (no "decrypting…" in between); our own
    // edit is known already.
    let plain = mine?.wire === frame.text ? mine.plain : undefined;
    if (plain === undefined && crypt.key) plain = await e2e.decrypt(await crypt.cryptoKey, ROOM, frame.text).catch(() => undefined);
    if (revisions.get(body) !== revision) return; // a later edit came meanwhile
    fillEncryptedBody(body, frame.text, plain);
  } else {
    showBody(body, frame.text);
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
  resumeAll();
  if (SHORT_NOTES[frame.code]) return SHORT_NOTES[frame.code];
  if (frame.code === "too_large" && kind === "reaction") return "A message can have at most 20 different reactions.";
  return null;
}

/// Anything waiting for an answer that will not come (an error, or a new
/// socket) can be tried again.
export function resumeAll() {
  editsInFlight.clear();
  for (const editor of els.messages.querySelectorAll(".editor.saving")) resumeEditor(editor.closest(".msg"));
  for (const confirm of els.messages.querySelectorAll(".confirm.deleting")) confirm.remove();
}
