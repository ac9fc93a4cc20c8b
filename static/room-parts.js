// The parts of a message around its text: the quote of the message it
// answers, the "(edited)" mark, its reactions, and its actions (React,
// Reply, and on one's own Edit and Delete). Built here as DOM, text as
// text; what the buttons do is room-actions.js, which listens on the list
// (each button says which action it is in `data-action`).
import { ADMIN, myName } from "./room-state.js";

/// The picker's reactions: [emoji, what a screen reader says].
export const EMOJI = [
  ["👍", "thumbs up"],
  ["❤️", "heart"],
  ["😂", "laughing"],
  ["🎉", "party"],
  ["😮", "surprised"],
  ["😢", "sad"],
  ["🙏", "thank you"],
  ["👀", "eyes"],
];

const SNIPPET_LENGTH = 100;
export const DELETED = "Original message deleted";
export const NOT_LOADED = "Original message not loaded";

/// A time in full, local: what a time's title (hover) says.
export function fullDate(ts) {
  const date = new Date(ts);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString([], { dateStyle: "full", timeStyle: "medium" });
}

function button(className, text, label, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  if (label) {
    b.setAttribute("aria-label", label);
    b.title = label;
  }
  if (action) b.dataset.action = action;
  return b;
}

// ---- quotes ----------------------------------------------------------------------

/// What a message shows, short and on one line (a quote's or the reply
/// bar's snippet): its text as shown, without the formatting's markers.
export function snippetOf(el) {
  const text = (el.querySelector(":scope > .body")?.textContent ?? "").replace(/\s+/g, " ").trim();
  return text.length > SNIPPET_LENGTH ? `${text.slice(0, SNIPPET_LENGTH - 1)}…` : text;
}

/// Whether `r`'s message `id` is known to be gone: deleted while this page
/// watched, or missing from a stretch of history the page has whole.
export function isGone(r, id) {
  if (r.deleted.has(id)) return true;
  if (r.byId.has(id) || r.oldestId === null) return false;
  return id > r.oldestId || (id < r.oldestId && !r.moreOlder);
}

/// The quote above a reply: the original's author and the start of its
/// text; a button that shows the original (room-actions.js).
export function quoteElement(r, replyTo) {
  const quote = button("quote", "", "", "quote");
  quote.dataset.replyTo = replyTo;
  const who = document.createElement("span");
  who.className = "quote-who";
  const text = document.createElement("span");
  text.className = "quote-text";
  quote.append(who, text);
  fillQuote(r, quote);
  return quote;
}

export function fillQuote(r, quote) {
  const id = Number(quote.dataset.replyTo);
  const original = r.byId.get(id);
  const [who, text] = quote.children;
  const gone = !original && isGone(r, id);
  quote.classList.toggle("missing", !original);
  quote.setAttribute("aria-disabled", String(gone));
  if (original) {
    who.textContent = original.dataset.user;
    text.textContent = snippetOf(original);
    quote.setAttribute("aria-label", `In reply to ${original.dataset.user}: ${text.textContent}. Show the original message.`);
  } else {
    who.textContent = "";
    text.textContent = gone ? DELETED : NOT_LOADED;
    quote.setAttribute("aria-label", gone ? DELETED : `${NOT_LOADED}. Load older messages to show it.`);
  }
  quote.title = original || !gone ? "Show the original message" : "";
}

/// Every quote of `r`'s message `id` (and the reply bar's, through the
/// event) says what it shows now.
export function refreshQuotes(r, id) {
  for (const quote of r.list.querySelectorAll(`.quote[data-reply-to="${Number(id)}"]`)) fillQuote(r, quote);
  document.dispatchEvent(new CustomEvent("parlor:quotes", { detail: { r, id: Number(id) } }));
}

// ---- the foot: "(edited)" and reactions ---------------------------------------------

function foot(el) {
  let f = el.querySelector(":scope > .msg-foot");
  if (!f) {
    f = document.createElement("div");
    f.className = "msg-foot";
    el.querySelector(":scope > .body").after(f);
  }
  return f;
}

/// A small "(edited)", the time of the edit a hover away.
export function markEdited(el, editedAt) {
  if (!editedAt) return;
  el.dataset.editedAt = editedAt;
  const f = foot(el);
  let mark = f.querySelector(".edited");
  if (!mark) {
    mark = document.createElement("span");
    mark.className = "edited";
    mark.textContent = "(edited)";
    f.append(mark);
  }
  mark.title = `Edited ${fullDate(editedAt)}`;
}

const reactionsOf = new WeakMap(); // .msg -> [{ emoji, users }], in the order first used

/// A message's reactions as `joined` and `history` give them: the whole state.
export function setReactions(el, reactions = []) {
  const list = [];
  for (const r of reactions) {
    if (typeof r?.emoji !== "string") continue;
    list.push({ emoji: r.emoji, users: [...new Set(Array.isArray(r.users) ? r.users : [])], count: r.count });
  }
  reactionsOf.set(el, list);
  renderReactions(el);
}

/// One `reaction_added` / `reaction_removed`: a user once per emoji.
export function applyReaction(el, emoji, user, added) {
  const list = reactionsOf.get(el) ?? [];
  let r = list.find((x) => x.emoji === emoji);
  if (added) {
    if (!r) list.push((r = { emoji, users: [] }));
    if (!r.users.includes(user)) r.users.push(user);
    r.count = undefined; // the users are the count from now on
  } else if (r) {
    r.users = r.users.filter((name) => name !== user);
    r.count = undefined;
    if (r.users.length === 0) list.splice(list.indexOf(r), 1);
  }
  reactionsOf.set(el, list);
  renderReactions(el);
}

export function reacted(el, emoji) {
  return (reactionsOf.get(el) ?? []).some((r) => r.emoji === emoji && r.users.includes(myName));
}

function renderReactions(el) {
  const list = reactionsOf.get(el) ?? [];
  let row = el.querySelector(":scope > .msg-foot > .reactions");
  if (list.length === 0) {
    row?.remove();
    if (el.querySelector(":scope > .msg-foot")?.childElementCount === 0) el.querySelector(":scope > .msg-foot").remove();
    return;
  }
  if (!row) {
    row = document.createElement("div");
    row.className = "reactions";
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", "Reactions");
    foot(el).prepend(row);
  }
  row.replaceChildren(
    ...list.map((r) => {
      const count = Math.max(r.users.length, r.count ?? 0);
      const mine = r.users.includes(myName);
      const chip = button("chip", "", "", "toggle-reaction");
      chip.dataset.emoji = r.emoji;
      chip.setAttribute("aria-pressed", String(mine));
      const emoji = document.createElement("span");
      emoji.className = "chip-emoji";
      emoji.textContent = r.emoji;
      const n = document.createElement("span");
      n.className = "chip-count";
      n.textContent = String(count);
      chip.append(emoji, n);
      const names = r.users.length ? r.users.join(", ") : `${count} ${count === 1 ? "person" : "people"}`;
      chip.title = `${names} reacted with ${r.emoji}`;
      chip.setAttribute("aria-label", `${r.emoji} ${count}: ${names}. ${mine ? "Remove your reaction" : "Add yours"}`);
      return chip;
    }),
  );
}

// ---- actions ----------------------------------------------------------------------

/// The actions of a confirmed message: a toolbar shown on hover or focus
/// (on a phone, by tapping the message or its "⋯").
export function toolsElement(m, own) {
  const tools = document.createElement("div");
  tools.className = "msg-tools";
  const more = button("more", "⋯", `Actions for the message from ${m.user}`, "more");
  more.setAttribute("aria-expanded", "false");
  const bar = document.createElement("div");
  bar.className = "msg-actions";
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", `Message from ${m.user}`);
  bar.append(
    button("act", "React", `React to the message from ${m.user}`, "react"),
    button("act", "Reply", `Reply to ${m.user}`, "reply"),
  );
  if (own) bar.append(button("act", "Edit", "Edit your message", "edit"));
  // One Delete: one's own by the protocol's delete_message, anyone's for an
  // admin (room-actions.js).
  if (own || ADMIN) {
    bar.append(button("act delete", "Delete", own ? "Delete your message" : `Delete message from ${m.user}`, "delete"));
  }
  tools.append(more, bar);
  return tools;
}

/// The reaction picker, in the message's flow (never past a phone's edge).
export function pickerElement(el) {
  const picker = document.createElement("div");
  picker.className = "emoji-picker";
  picker.setAttribute("role", "group");
  picker.setAttribute("aria-label", "Pick a reaction");
  for (const [emoji, name] of EMOJI) {
    const mine = reacted(el, emoji);
    const b = button("pick", emoji, `${mine ? "Remove" : "React with"} ${name}`, "pick");
    b.dataset.emoji = emoji;
    b.setAttribute("aria-pressed", String(mine));
    picker.append(b);
  }
  return picker;
}
