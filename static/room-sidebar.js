// The rooms this browser is in, like a chat app's channel list: kept in
// localStorage (`parlor:rooms`, most recent first), each a link with its
// unread count (marked when a message mentions the reader) and a Leave
// button; a field to join one more. Switching rooms happens in the page, on
// the one socket (room.js joins every room listed): the current room's
// message list is swapped for the other's, and everything drawn from the
// current room is drawn again. The address follows (/chat/<room>), and the
// browser's back and forward buttons switch back.
//
// Also here: an admin's "watching unseen" banner (`?watch`), and the
// phone's "Rooms" button, which opens the list over the messages.
import {
  INITIAL_ROOM,
  WATCH,
  ROOM_PATTERN,
  els,
  rooms,
  current,
  setCurrent,
  addRoom,
  join,
  send,
  isOpen,
} from "./room-state.js";
import {
  autosize,
  drawMembers,
  renderPill,
  renderStatus,
  renderTyping,
  scrollToBottom,
  atBottom,
  updateTitle,
} from "./room-view.js";
import { markRead, saveSeen, forgetSeen } from "./room-alerts.js";
import { renderEncryption } from "./room-e2e.js";
import { renderReplyBar } from "./room-actions.js";

// ---- what this browser remembers ------------------------------------------------

const STORE_KEY = "parlor:rooms";
const MAX_REMEMBERED = 30;

/// The rooms remembered, most recent first (another tab's changes included).
function remembered() {
  try {
    const list = JSON.parse(localStorage.getItem(STORE_KEY) ?? "[]");
    if (!Array.isArray(list)) return [];
    return [...new Set(list.filter((name) => typeof name === "string" && ROOM_PATTERN.test(name)))];
  } catch {
    return []; // storage off (or garbage in it): this page's rooms only
  }
}

function store(list) {
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(list.slice(0, MAX_REMEMBERED)));
  } catch {
    // Storage off: the list lasts as long as the page.
  }
}

// Read, changed and written back at once, so that another tab's rooms stay.
const remember = (name) => store([name, ...remembered().filter((n) => n !== name)]);
const forget = (name) => store(remembered().filter((n) => n !== name));

// ---- the list ------------------------------------------------------------------------

const heading = document.createElement("h2");
heading.className = "rooms-heading";
heading.textContent = "Rooms";
const list = document.createElement("ul");
list.className = "rooms-list";

const joinForm = document.createElement("form");
joinForm.className = "rooms-join";
joinForm.id = "join-room-form";
joinForm.noValidate = true;
const joinLabel = document.createElement("label");
joinLabel.htmlFor = "join-room";
joinLabel.className = "visually-hidden";
joinLabel.textContent = "Join a room";
const joinRow = document.createElement("div");
joinRow.className = "rooms-join-row";
const joinInput = document.createElement("input");
joinInput.id = "join-room";
joinInput.placeholder = "+ Join room";
joinInput.autocomplete = "off";
joinInput.spellcheck = false;
joinInput.maxLength = 64;
joinInput.setAttribute("autocapitalize", "none");
joinInput.setAttribute("aria-describedby", "join-room-error");
const joinButton = document.createElement("button");
joinButton.type = "submit";
joinButton.className = "ghost small";
joinButton.textContent = "Join";
const joinError = document.createElement("p");
joinError.id = "join-room-error";
joinError.className = "field-error";
joinError.setAttribute("role", "alert");
joinRow.append(joinInput, joinButton);
joinForm.append(joinLabel, joinRow, joinError);
els.sidebar.append(heading, list, joinForm);

const items = new WeakMap(); // room state -> its <li>

function itemFor(r) {
  let li = items.get(r);
  if (li) return li;
  li = document.createElement("li");
  li.className = "rooms-item";
  li.dataset.room = r.name;
  const link = document.createElement("a");
  link.className = "rooms-link";
  link.href = `/chat/${r.name}`;
  link.title = `#${r.name}`; // a long name is cut short
  const name = document.createElement("span");
  name.className = "rooms-name";
  name.textContent = `#${r.name}`;
  const tag = document.createElement("span");
  tag.className = "rooms-tag";
  const badge = document.createElement("span");
  badge.className = "rooms-badge";
  badge.setAttribute("aria-hidden", "true"); // the link's label says it
  link.append(name, tag, badge);
  const leave = document.createElement("button");
  leave.type = "button";
  leave.className = "rooms-leave";
  leave.textContent = "×";
  leave.setAttribute("aria-label", `Leave #${r.name}`);
  leave.title = `Leave #${r.name}`;
  li.append(link, leave);
  link.addEventListener("click", (event) => {
    // A new tab, a new window: the browser's own way.
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    if (rooms.get(r.name) === r) showRoom(r);
  });
  leave.addEventListener("click", () => leaveRoom(r));
  items.set(r, li);
  return li;
}

/// One room's line: current or not, its badge, and why it is out of it.
function drawItem(r) {
  const li = itemFor(r);
  const link = li.querySelector(".rooms-link");
  const on = r === current();
  if (on) link.setAttribute("aria-current", "page");
  else link.removeAttribute("aria-current");
  li.classList.toggle("current", on);
  li.classList.toggle("removed", Boolean(r.removed));
  const tag = r.removed ? r.removedTag || "out" : r.hidden ? "unseen" : "";
  li.querySelector(".rooms-tag").textContent = tag;
  li.querySelector(".rooms-tag").hidden = tag === "";
  // The room on screen shows its count in the title; the others here.
  const unread = on ? 0 : r.unread;
  const mention = !on && r.unreadMention;
  const badge = li.querySelector(".rooms-badge");
  badge.hidden = unread === 0;
  badge.textContent = mention ? `@ ${unread}` : String(unread);
  badge.classList.toggle("mention", mention);
  li.dataset.unread = String(unread);
  li.classList.toggle("unread", unread > 0);
  if (mention) li.dataset.mention = "true";
  else delete li.dataset.mention;
  let label = `#${r.name}`;
  if (tag) label += ` (${tag})`;
  if (unread > 0) label += `, ${unread} unread${mention ? ", mentioning you" : ""}`;
  link.setAttribute("aria-label", label);
}

/// The whole list, in the rooms' order (only what changed is touched, so
/// a focused link or button keeps its focus).
export function renderRooms() {
  const wanted = [...rooms.values()].map(itemFor);
  const same = wanted.length === list.children.length && wanted.every((li, i) => list.children[i] === li);
  if (!same) list.replaceChildren(...wanted);
  for (const r of rooms.values()) drawItem(r);
  drawToggle();
}

document.addEventListener("parlor:unread", ({ detail: r }) => {
  if (rooms.get(r.name) !== r) return;
  drawItem(r);
  drawToggle();
});

// ---- switching ------------------------------------------------------------------------

/// Where the reader is in `r`'s list, to come back to: null at the bottom,
/// else the first thing in view and how far below the list's top it is.
function anchorOf(r) {
  if (atBottom(r)) return null;
  const top = r.list.getBoundingClientRect().top;
  const el = [...r.list.children].find((child) => child.getBoundingClientRect().bottom > top);
  return el ? { el, offset: el.getBoundingClientRect().top - top } : null;
}

function restoreView(r) {
  const anchor = r.anchor;
  r.anchor = null;
  if (!anchor || !r.list.contains(anchor.el)) return scrollToBottom(r);
  r.list.scrollTop += anchor.el.getBoundingClientRect().top - r.list.getBoundingClientRect().top - anchor.offset;
}

const pathOf = (r) => `/chat/${r.name}`;

/// Shows `r` in place of the room on screen: its messages where the reader
/// left them, and everything else the page draws from the current room.
/// `how`: "push" (a new entry in the browser's history), "replace" or
/// "none" (the address is already right: back or forward).
export function showRoom(r, how = "push") {
  const before = current();
  if (r === before) return;
  if (before) {
    if (rooms.get(before.name) === before) saveSeen(before); // unless it was just left
    before.anchor = anchorOf(before);
    before.draft = els.text.value;
    before.list.removeAttribute("id");
    before.list.replaceWith(r.list);
  }
  r.list.id = "messages";
  setCurrent(r);
  restoreView(r);
  els.title.textContent = `#${r.name}`;
  els.text.placeholder = `Message #${r.name}`;
  els.nameLabel.textContent = `Choose a display name to join #${r.name}`;
  els.text.value = r.draft;
  autosize();
  els.note.textContent = "";
  drawMembers(r);
  renderTyping(r);
  renderEncryption();
  renderReplyBar();
  renderPill();
  renderStatus();
  markRead(r);
  saveSeen(r);
  updateTitle();
  renderWatch();
  renderRooms();
  setPanel(false);
  if (how === "push") history.pushState({ room: r.name }, "", pathOf(r));
  else if (how === "replace") history.replaceState({ room: r.name }, "", pathOf(r));
  document.dispatchEvent(new CustomEvent("parlor:switched", { detail: r }));
}

/// The room `name` on screen, joined (and remembered) first if need be.
export function openRoom(name, how = "push") {
  let r = rooms.get(name);
  if (!r) {
    r = addRoom(name, { first: true });
    remember(name);
    join(r); // or, while the socket is down, once it is up again
  }
  showRoom(r, how);
}

/// Out of `r` on purpose: the server is told, the list forgets it, and if it
/// was on screen the next room in the list takes its place (or the home page).
export function leaveRoom(r) {
  if (rooms.get(r.name) !== r) return;
  if (!r.removed && isOpen()) send({ type: "leave_room", room: r.name });
  const order = [...rooms.values()];
  const at = order.indexOf(r);
  rooms.delete(r.name);
  forget(r.name);
  forgetSeen(r.name);
  for (const timer of r.typers.values()) clearTimeout(timer);
  clearInterval(r.muteTimer);
  itemFor(r).remove();
  if (r === current()) {
    const next = order[at + 1] ?? order[at - 1];
    if (next) showRoom(next, "replace");
    else location.assign("/");
  }
  renderRooms();
  // The focus goes where the reader can go on from.
  (list.querySelector(".rooms-item.current .rooms-link") ?? joinInput).focus();
}

window.addEventListener("popstate", () => {
  const found = location.pathname.match(/^\/chat\/([^/]+)$/);
  const name = found && decodeURIComponent(found[1]);
  if (name && ROOM_PATTERN.test(name)) openRoom(name, "none");
});

// A notification's click (room-alerts.js): its room on screen.
document.addEventListener("parlor:show", ({ detail: r }) => {
  if (rooms.get(r.name) === r) showRoom(r);
});

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const name = joinInput.value.trim().replace(/^#/, "");
  if (!ROOM_PATTERN.test(name)) {
    joinError.textContent = "room names use lowercase letters, digits, '-' and '_', and start with a letter or digit";
    joinInput.setAttribute("aria-invalid", "true");
    return;
  }
  joinInput.value = "";
  joinError.textContent = "";
  joinInput.removeAttribute("aria-invalid");
  openRoom(name);
});
joinInput.addEventListener("input", () => {
  if (!joinError.textContent) return;
  joinError.textContent = "";
  joinInput.removeAttribute("aria-invalid");
});

// ---- the phone's "Rooms" button ---------------------------------------------------------

const toggle = document.createElement("button");
toggle.type = "button";
toggle.id = "toggle-rooms";
toggle.className = "ghost rooms-toggle";
toggle.setAttribute("aria-controls", "rooms");
toggle.setAttribute("aria-expanded", "false");
const toggleLabel = document.createElement("span");
toggleLabel.textContent = "Rooms";
const toggleBadge = document.createElement("span");
toggleBadge.className = "rooms-badge";
toggleBadge.setAttribute("aria-hidden", "true");
toggle.append(toggleLabel, toggleBadge);
els.title.before(toggle);

/// The phone's panel of rooms shown or not (never with the members' over it).
export function setPanel(open) {
  els.sidebar.classList.toggle("open", open);
  toggle.setAttribute("aria-expanded", String(open));
  if (!open) return;
  els.membersPanel.classList.remove("open");
  els.membersToggle.setAttribute("aria-expanded", "false");
}
toggle.addEventListener("click", () => setPanel(!els.sidebar.classList.contains("open")));
els.sidebar.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || !els.sidebar.classList.contains("open")) return;
  setPanel(false);
  toggle.focus();
});

/// The unread total of the rooms not on screen, on the button.
function drawToggle() {
  let total = 0;
  let mention = false;
  for (const r of rooms.values()) {
    if (r === current()) continue;
    total += r.unread;
    mention ||= r.unreadMention;
  }
  toggleBadge.hidden = total === 0;
  toggleBadge.textContent = mention ? `@ ${total}` : String(total);
  toggleBadge.classList.toggle("mention", mention);
  toggle.setAttribute("aria-label", total ? `Rooms, ${total} unread in other rooms` : "Rooms");
}

// ---- watching unseen (admins) -------------------------------------------------------

const banner = document.createElement("div");
banner.id = "watch-banner";
banner.className = "watch-banner";
banner.setAttribute("role", "status");
banner.hidden = true;
const bannerText = document.createElement("span");
const visibly = document.createElement("button");
visibly.type = "button";
visibly.id = "join-visibly";
visibly.className = "small";
visibly.textContent = "Join visibly";
banner.append(bannerText, visibly);
els.conversation.prepend(banner);

function renderWatch() {
  const r = current();
  banner.hidden = !r.hidden;
  bannerText.textContent = `Watching #${r.name} unseen — members can't see you`;
}

visibly.addEventListener("click", () => {
  const r = current();
  r.hidden = false;
  // Joining again without `hidden` makes this page a member like any other
  // (the others get `presence`); from now on it is one of this browser's rooms.
  join(r);
  remember(r.name);
  if (new URLSearchParams(location.search).has("watch")) history.replaceState(history.state, "", pathOf(r));
  renderWatch();
  renderRooms();
});

// ---- the rooms at the start ----------------------------------------------------------

// The room the page was opened on comes first. An admin's room watched
// unseen is not remembered: opening another room later must not join it
// in plain sight.
if (!WATCH) remember(INITIAL_ROOM);
const names = remembered().filter((name) => name !== INITIAL_ROOM);
const page = document.getElementById("messages");
const first = addRoom(INITIAL_ROOM, { list: page });
first.hidden = WATCH;
for (const name of names) addRoom(name);
setCurrent(first);
renderWatch();
renderRooms();
