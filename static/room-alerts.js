// Keeping up with the rooms from elsewhere: each message's text shown (and
// whether it mentions this reader), the count of messages from others not
// yet seen in each room, which the title (for the room on screen) and the
// sidebar (for the others) show, and a browser notification when someone
// mentions this reader while the tab is hidden, for those who asked for them
// with the header's "Notify me of mentions" button (added here).
//
// Only live messages count: never the history, nor what a reconnect catches
// up on (room-messages.js calls `arrived` for live ones only). In an
// encrypted room a message's text is known only once decrypted
// (room-e2e.js calls `showBody` then): whether it mentions the reader, and
// the notification's snippet, come from that decrypted text alone.
import { myName, els, rooms, current, onList } from "./room-state.js";
import { richText, atBottom, updateTitle } from "./room-view.js";

const shown = new WeakMap(); // .body elements whose text is on the page -> that text, as typed
// A live message from someone else (its element) whose text is not known yet
// -> { r, m, counted }: what `arrived` left for `showBody` to finish.
const awaiting = new WeakMap();

// Either says so: tests (and some embedders) override only one of them.
const tabHidden = () => document.visibilityState === "hidden" || document.hidden === true;

/// A room's unread count changed: the title, and the sidebar's badges
/// (room-sidebar.js listens).
export function unreadChanged(r) {
  if (r === current()) updateTitle();
  document.dispatchEvent(new CustomEvent("parlor:unread", { detail: r }));
}

/// Shows `text` in a message's body (already in its .msg element) of room
/// `r` with its formatting, and marks the message if it mentions this
/// reader. A message on the page then tells the list (`parlor:shown`), so
/// that quotes of it follow (room-actions.js).
export function showBody(r, bodyEl, text) {
  bodyEl.replaceChildren(richText(r, text));
  shown.set(bodyEl, text);
  const el = bodyEl.closest(".msg");
  if (!el) return;
  el.dispatchEvent(new CustomEvent("parlor:shown", { bubbles: true }));
  // One's own message can name oneself; it is no call for attention.
  const mentionsMe = !el.classList.contains("own") && bodyEl.querySelector(".mention.me") !== null;
  el.classList.toggle("mentions-me", mentionsMe);
  const waiting = awaiting.get(el);
  if (waiting) {
    awaiting.delete(el);
    react(el, waiting);
  }
}

/// The text a message's body shows, as typed (decrypted, in an encrypted
/// room); undefined while it shows none (a placeholder).
export function shownText(bodyEl) {
  return shown.get(bodyEl);
}

/// A live message `m` of room `r`, just placed as `el`; `wasAtBottom`:
/// whether the reader was at the bottom of the list before it came. In a
/// room off screen every message from someone else counts.
export function arrived(r, el, m, wasAtBottom) {
  if (m.user === myName) return;
  const counted = r !== current() || tabHidden() || !wasAtBottom;
  if (counted) {
    r.unread += 1;
    unreadChanged(r);
  }
  if (shown.has(el.querySelector(".body"))) react(el, { r, m, counted });
  else awaiting.set(el, { r, m, counted }); // still being decrypted
}

/// A live message from someone else, its text known.
function react(el, { r, m, counted }) {
  if (!el.classList.contains("mentions-me")) return;
  // Unless the reader caught up meanwhile.
  if (counted && r.unread > 0) {
    r.unreadMention = true;
    unreadChanged(r);
  }
  if (tabHidden()) notify(r, el, m);
}

/// Seen: `r`'s messages count as read (the reader is looking at them).
export function markRead(r) {
  if (r.unread === 0 && !r.unreadMention) return;
  r.unread = 0;
  r.unreadMention = false;
  unreadChanged(r);
}

/// Messages of `r` that came while this page was not looking (a join's or
/// a gap's history, not live messages), as placed elements: unread in a
/// room off screen. (An encrypted one's mention is known only once
/// decrypted: these count without it.)
export function missed(r, placed) {
  if (r === current()) return;
  const others = placed.filter((el) => el.dataset.user !== myName);
  if (others.length === 0) return;
  r.unread += others.length;
  if (others.some((el) => el.classList.contains("mentions-me"))) r.unreadMention = true;
  unreadChanged(r);
}

// ---- up to where each room was seen, across visits -------------------------------

// room -> [epoch, id]: the newest message of the room when it was last on
// screen, so that what came since counts as unread on the next visit.
const SEEN_KEY = "parlor:seen";

function seenMap() {
  try {
    const map = JSON.parse(localStorage.getItem(SEEN_KEY) ?? "{}");
    return map && typeof map === "object" && !Array.isArray(map) ? map : {};
  } catch {
    return {};
  }
}

function storeSeen(change) {
  try {
    const map = seenMap();
    change(map);
    localStorage.setItem(SEEN_KEY, JSON.stringify(map));
  } catch {
    // Storage off: each visit starts afresh.
  }
}

/// The id `room` was seen up to, in `epoch` (ids of another epoch say
/// nothing), or null.
export function lastSeen(room, epoch) {
  const seen = seenMap()[room];
  return Array.isArray(seen) && seen[0] === epoch && Number.isInteger(seen[1]) ? seen[1] : null;
}

/// `r` was on screen: seen up to its newest message.
export function saveSeen(r) {
  if (r.epoch === null || r.lastId === 0) return;
  storeSeen((map) => (map[r.name] = [r.epoch, r.lastId]));
}

export function forgetSeen(room) {
  storeSeen((map) => delete map[room]);
}

window.addEventListener("pagehide", () => {
  if (rooms.get(current().name) === current()) saveSeen(current()); // unless just left
});

// Caught up: the tab is shown and the list on screen is at its end.
function catchUp() {
  if (tabHidden()) return saveSeen(current());
  if (atBottom()) markRead(current());
}
document.addEventListener("visibilitychange", catchUp);
onList("scroll", (event, r) => {
  if (r === current()) catchUp();
});

// ---- notifications -------------------------------------------------------------

const supported = "Notification" in window;
const STORE_KEY = "parlor.notify-mentions";

// The reader's choice, kept in this browser for every room; "on" or "off".
function wanted() {
  try {
    return localStorage.getItem(STORE_KEY) === "on";
  } catch {
    return false; // storage off: nothing remembered, nothing wanted
  }
}

function remember(on) {
  try {
    localStorage.setItem(STORE_KEY, on ? "on" : "off");
  } catch {
    // Storage off: the choice lasts as long as the permission asked.
  }
  sessionChoice = on;
}
let sessionChoice = null; // what the reader chose on this page, if storage is off

const enabled = () => supported && Notification.permission === "granted" && (sessionChoice ?? wanted());

const SNIPPET_LENGTH = 120;

/// The message's text as plain text (what it shows, without markers),
/// short: a notification is no place for a whole message.
function snippet(el) {
  const text = el.querySelector(".body").textContent.replace(/\s+/g, " ").trim();
  return text.length > SNIPPET_LENGTH ? `${text.slice(0, SNIPPET_LENGTH - 1)}…` : text;
}

function notify(r, el, m) {
  if (!enabled()) return;
  try {
    const notification = new Notification(`${m.user} mentioned you in #${r.name}`, {
      body: snippet(el),
      tag: `parlor:${r.name}:${m.id}`, // once per message, however many times this runs
    });
    notification.onclick = () => {
      window.focus();
      // Its room on screen (room-sidebar.js), then the message.
      document.dispatchEvent(new CustomEvent("parlor:show", { detail: r }));
      if (el.isConnected) el.scrollIntoView({ block: "center" });
      notification.close();
    };
  } catch {
    // Some browsers (Chrome on Android) allow notifications only from a
    // service worker: there is no notification there, and no error either.
  }
}

// ---- the header's button -----------------------------------------------------

const BELL =
  "M8 1.5a1 1 0 0 1 1 1v.6a4.5 4.5 0 0 1 3.5 4.4v2.8l1.2 1.6a.6.6 0 0 1-.5 1H2.8a.6.6 0 0 1-.5-1l1.2-1.6V7.5A4.5 4.5 0 0 1 7 3.1v-.6a1 1 0 0 1 1-1zM6.3 14h3.4a1.7 1.7 0 0 1-3.4 0z";

function bellIcon() {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "14");
  svg.setAttribute("height", "14");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", BELL);
  svg.append(path);
  return svg;
}

// A toggle with a label that does not change (aria-pressed says whether it
// is on). On a phone only the bell shows; the label stays for screen readers.
const toggle = document.createElement("button");
toggle.type = "button";
toggle.id = "notify-toggle";
toggle.className = "ghost notify-toggle";
const label = document.createElement("span");
label.className = "notify-label";
label.textContent = "Notify me of mentions";
toggle.append(bellIcon(), label);

function renderToggle() {
  const denied = Notification.permission === "denied";
  toggle.setAttribute("aria-pressed", String(enabled()));
  toggle.disabled = denied;
  toggle.title = denied
    ? "Notifications are blocked for this site: allow them in the browser's site settings."
    : enabled()
      ? "On: a notification when someone @mentions you while this tab is hidden. Click to turn off."
      : "A notification when someone @mentions you while this tab is hidden.";
}

if (supported) {
  toggle.addEventListener("click", async () => {
    if (enabled()) {
      remember(false);
    } else {
      // Asked only now, after a click: browsers ignore (or hold against the
      // site) a request that comes out of the blue.
      const permission = Notification.permission === "default" ? await Notification.requestPermission() : Notification.permission;
      remember(permission === "granted");
    }
    renderToggle();
  });
  // A permission changed in the browser's settings shows at once.
  navigator.permissions
    ?.query({ name: "notifications" })
    .then((status) => status.addEventListener("change", renderToggle))
    .catch(() => {});
  // The choice made in another tab of this browser.
  window.addEventListener("storage", (event) => {
    if (event.key !== STORE_KEY) return;
    sessionChoice = null;
    renderToggle();
  });
  renderToggle();
  els.copy.after(toggle);
}
