// The room page's end-to-end encryption, room by room: finding a room's key
// (an invite link's fragment, this browser's storage, or the key form),
// placeholders for the texts it cannot read, and decrypting texts into
// message bodies. Every encrypted room has its own key (`r.crypt`); the
// badge, panel and key form show the current room's. The cryptography
// itself is e2e.js.
import * as e2e from "./e2e.js";
import { INITIAL_ROOM, els, current } from "./room-state.js";
import { atBottom, notice, updateComposer } from "./room-view.js";
import { showBody } from "./room-alerts.js";

// An invite link brings the key in its fragment (never sent to a server):
// take it out of the address bar, and so out of the history, bookmarks and
// screenshots. "Copy invite link" puts it back for sharing. It is stored
// once the server confirms the room is encrypted (setUpEncryption), so
// this browser holds keys only for rooms that are.
function takeKeyFromFragment() {
  const key = e2e.keyFromLink(location.hash);
  if (!key) return null;
  history.replaceState(history.state, "", location.pathname + location.search);
  return key;
}
// Also kept here: with localStorage off, the page is all there is.
let fragmentKey = takeKeyFromFragment();

/// The key this page has for `r` from its link or this browser's storage,
/// whatever the server says of the room, or null.
function keyHeldFor(r) {
  return (r.name === INITIAL_ROOM ? fragmentKey : null) ?? e2e.loadKey(r.name);
}

// ---- encrypted texts ---------------------------------------------------------

const PLACEHOLDERS = {
  link: "encrypted: you need the room's link",
  passphrase: "encrypted: you need the room's passphrase",
  insecure: "encrypted: open Parlor over HTTPS to read it",
};
const UNDECRYPTABLE = "could not be decrypted";

function missingKeyText(r) {
  if (!e2e.available()) return PLACEHOLDERS.insecure;
  return r.crypt.info.key === "passphrase" ? PLACEHOLDERS.passphrase : PLACEHOLDERS.link;
}

// Each message is placed (in id order) at once, and its text filled in when
// its decryption ends, however long each one takes.
export function fillEncryptedBody(r, bodyEl, envelope, plain) {
  r.crypt.envelopes.set(bodyEl, envelope);
  if (plain !== undefined) showBody(r, bodyEl, plain);
  else decryptInto(r, bodyEl);
}

async function decryptInto(r, bodyEl) {
  const crypt = r.crypt;
  const keyPromise = crypt.cryptoKey;
  showPlaceholder(r, bodyEl, crypt.key ? "decrypting…" : missingKeyText(r));
  if (!crypt.key) return;
  const cryptoKey = await keyPromise;
  const plain = await e2e.decrypt(cryptoKey, r.name, crypt.envelopes.get(bodyEl)).catch(() => null);
  // A key that came meanwhile decrypts this again.
  if (keyPromise !== crypt.cryptoKey) return;
  // Never the raw text: a message that does not authenticate says so.
  if (plain === null) {
    showPlaceholder(r, bodyEl, UNDECRYPTABLE, "undecryptable");
    return;
  }
  keepingView(r, bodyEl, () => {
    bodyEl.className = "body";
    showBody(r, bodyEl, plain);
  });
}

function showPlaceholder(r, bodyEl, text, kind = "") {
  keepingView(r, bodyEl, () => {
    bodyEl.className = `body placeholder ${kind}`.trim();
    bodyEl.textContent = text;
  });
  // Quotes of it say what it shows (room-actions.js).
  bodyEl.dispatchEvent(new CustomEvent("parlor:shown", { bubbles: true }));
}

// Changes a message's text without moving what the reader looks at: at the
// bottom it stays at the bottom; a message above the view that grows
// pushes the view down by as much. (A room off screen has no view yet.)
function keepingView(r, bodyEl, change) {
  if (!bodyEl.isConnected || r !== current()) return change();
  const list = r.list;
  const wasAtBottom = atBottom(r);
  const above = bodyEl.getBoundingClientRect().bottom <= list.getBoundingClientRect().top;
  const before = bodyEl.offsetHeight;
  change();
  if (wasAtBottom) list.scrollTop = list.scrollHeight;
  else if (above) list.scrollTop += bodyEl.offsetHeight - before;
}

function decryptAllShown(r) {
  for (const bodyEl of r.list.querySelectorAll(".msg[data-id] .body")) {
    if (r.crypt.envelopes.has(bodyEl)) decryptInto(r, bodyEl);
  }
}

/// `r`'s key from now on: every message shown is decrypted again.
function useKey(r, key) {
  r.crypt.key = key;
  r.crypt.cryptoKey = e2e.importKey(key).catch(() => null);
  r.crypt.asking = false;
  decryptAllShown(r);
  if (r === current()) {
    renderEncryption();
    updateComposer();
  }
}

/// Every `joined`: whether the room is encrypted (`info`), and the history
/// it brings. The first that says so shows the room as encrypted and finds
/// its key.
export function setUpEncryption(r, info, history = []) {
  r.crypt.known = true;
  if (!info) {
    // The server calls plain a room this browser holds a key for (or an
    // invite link brought one): someone changed the room behind its
    // members' backs, or the link is not what it claims. Nothing is sent
    // readable there (room-view.js's sendBlocker).
    r.crypt.downgraded = !r.crypt.info && keyHeldFor(r) !== null;
    if (r === current()) renderEncryption();
    return;
  }
  r.crypt.downgraded = false;
  if (r.crypt.info) return;
  r.crypt.info = info;
  const key = e2e.available() ? keyHeldFor(r) : null;
  const stored = e2e.loadKey(r.name);
  if (key && key !== stored) {
    // An invite link's key, new to this browser: an old link or a mistyped
    // one must not replace a key that works, nor pass for one. It is tried
    // on the history first; sends queue behind the check.
    useKey(r, key);
    const envelopes = history.map((m) => m.text);
    r.sending = r.sending
      .then(() => checkLinkKey(r, key, stored, envelopes))
      // Never sealed with a key whose check broke off; and the queue goes on.
      .catch(() => r.crypt.key === key && dropKey(r, "The invite link's key could not be checked: ask for the link again."));
  } else if (key) {
    useKey(r, key);
  } else {
    r.crypt.asking = e2e.available();
  }
  if (r === current()) renderEncryption();
}

/// Why an invite link's `key` may not take the place of `held` (the key the
/// page has for `r`, or null), or "": it must open one of `envelopes`; with
/// none to try it on, it cannot be checked (as with a passphrase) and is
/// taken only if there is no key to lose.
async function linkKeyRefusal(r, key, held, envelopes) {
  if (envelopes.length === 0) return held ? "The invite link's key cannot be checked, the room showing no messages yet" : "";
  return (await opensAny(r, key, envelopes)) ? "" : "The invite link's key does not decrypt this room's messages";
}

// Keeps the key an invite link brought only if linkKeyRefusal allows it.
// Otherwise the browser's own key is used if it opens the messages, or the
// page asks for the link again.
async function checkLinkKey(r, key, stored, envelopes) {
  if (r.name === INITIAL_ROOM) fragmentKey = null; // checked once, kept only if stored
  const superseded = () => r.crypt.key !== key; // the key form gave another meanwhile
  const refusal = await linkKeyRefusal(r, key, stored, envelopes);
  if (superseded()) return;
  if (!refusal) {
    e2e.storeKey(r.name, key);
    return;
  }
  const storedOpens = stored !== null && (envelopes.length === 0 || (await opensAny(r, stored, envelopes)));
  if (superseded()) return;
  if (storedOpens) {
    useKey(r, stored);
    notice(r, `${refusal}, so this browser's own key for the room is used.`);
  } else {
    dropKey(r, `${refusal}: ask for the link again.`);
  }
}

/// `r` has no key it can use after all: placeholders, and the key form.
function dropKey(r, why) {
  r.crypt.key = null;
  r.crypt.cryptoKey = Promise.resolve(null);
  r.crypt.asking = true;
  decryptAllShown(r);
  notice(r, why);
  if (r === current()) {
    renderEncryption();
    els.keyError.textContent = why;
    updateComposer();
  }
}

let formRoom = null; // the room the key form's contents are for
let forgetAskedIn = null; // the room "Forget the key" was last asked in

/// The badge, the panel and the key form as the room on screen has them.
export function renderEncryption() {
  const r = current();
  const info = r.crypt.info;
  els.e2eBadge.hidden = !info;
  els.e2ePanel.hidden = !info && !r.crypt.downgraded;
  els.e2ePanel.classList.toggle("warning", r.crypt.downgraded);
  els.keyForget.hidden = !r.crypt.downgraded;
  // A question asked in another room is not this room's to answer.
  if (forgetAskedIn !== r || !r.crypt.downgraded) {
    const hadFocus = els.keyForgetConfirm.contains(document.activeElement);
    askToForget(false);
    if (hadFocus) els.text.focus();
  }
  if (!info) {
    els.keyForm.hidden = true;
    els.keyChange.hidden = true;
    els.e2eExplain.textContent = r.crypt.downgraded
      ? "This browser holds an end-to-end key for this room, but the server says the room is not encrypted: " +
        "what you write here would be readable by the server, so nothing is sent. " +
        "If the room was deleted and its name used again, forget the key to write in it unencrypted."
      : "";
    return;
  }
  const passphrase = info.key === "passphrase";
  const who = passphrase ? "the passphrase" : "the invite link";
  if (r.crypt.asking) {
    els.keyLabel.textContent = passphrase ? "The room's passphrase" : "The room's invite link";
    els.keyInput.type = passphrase ? "password" : "text";
    els.keyInput.placeholder = passphrase ? "passphrase" : `${location.origin}/chat/${r.name}#k=…`;
  }
  if (formRoom !== r) {
    // The form was another room's: nothing typed there belongs here.
    formRoom = r;
    els.keyInput.value = "";
    els.keyError.textContent = "";
  }
  els.keyForm.hidden = !r.crypt.asking;
  // Asked for another key while holding one: keeping it is always a choice.
  els.keyCancel.hidden = !r.crypt.key;
  // A key can be wrong without anything to tell (say, a passphrase typed for
  // a room without messages yet): it can always be replaced.
  els.keyChange.hidden = !r.crypt.key || r.crypt.asking;
  els.keyChange.textContent = passphrase ? "Enter another passphrase" : "Use another invite link";
  els.e2eExplain.textContent = !e2e.available()
    ? `This room is end-to-end encrypted. ${e2e.NEEDS_HTTPS}`
    : r.crypt.key
      ? `Encrypted in your browser: the server stores only ciphertext. Anyone with ${who} can read it.`
      : `This room is end-to-end encrypted: you need ${who} to read it or write in it.`;
}

// The way out of a room called plain while this browser holds its key: a
// wiped server whose room names were used again looks the same as a server
// that lies, so only the person can tell, and is asked first (in the page,
// where the consequences can be spelled out).
function askToForget(open) {
  forgetAskedIn = open ? current() : null;
  els.keyForgetConfirm.hidden = !open;
  els.keyForget.setAttribute("aria-expanded", String(open));
}
els.keyForget.addEventListener("click", () => {
  askToForget(true);
  els.keyForgetNo.focus();
});
els.keyForgetNo.addEventListener("click", () => {
  askToForget(false);
  els.keyForget.focus();
});
els.keyForgetConfirm.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  askToForget(false);
  els.keyForget.focus();
});
els.keyForgetYes.addEventListener("click", () => {
  const r = current();
  if (!r.crypt.downgraded || forgetAskedIn !== r) return;
  askToForget(false);
  e2e.forgetKey(r.name);
  if (r.name === INITIAL_ROOM) fragmentKey = null;
  r.crypt.downgraded = false;
  renderEncryption();
  updateComposer();
  els.note.textContent = "Key forgotten: what you write here is readable by the server.";
  els.text.focus();
});

function keepKey() {
  const r = current();
  if (!r.crypt.key) return;
  r.crypt.asking = false;
  els.keyInput.value = "";
  els.keyError.textContent = "";
  renderEncryption();
  els.keyChange.focus();
}
els.keyCancel.addEventListener("click", keepKey);
els.keyForm.addEventListener("keydown", (event) => {
  if (event.key === "Escape") keepKey();
});

els.keyChange.addEventListener("click", () => {
  current().crypt.asking = true;
  renderEncryption();
  els.keyInput.focus();
});

/// Whether `key` opens `r`: it decrypts any of `envelopes` (or there is
/// none to check against).
async function opensAny(r, key, envelopes) {
  if (envelopes.length === 0) return true;
  const cryptoKey = await e2e.importKey(key).catch(() => null);
  if (!cryptoKey) return false;
  const results = await Promise.allSettled(envelopes.map((envelope) => e2e.decrypt(cryptoKey, r.name, envelope)));
  return results.some((result) => result.status === "fulfilled");
}

function shownEnvelopes(r) {
  const bodies = r.list.querySelectorAll(".msg[data-id] .body");
  return [...bodies].map((bodyEl) => r.crypt.envelopes.get(bodyEl)).filter(Boolean);
}

const opensShownMessages = (r, key) => opensAny(r, key, shownEnvelopes(r));

async function keyFromForm(r) {
  const value = els.keyInput.value;
  if (r.crypt.info.key !== "passphrase") {
    const key = e2e.keyFromLink(value) ?? (e2e.isKey(value.trim()) ? value.trim() : null);
    if (!key) throw new Error("That is not an invite link with a key: it ends in #k= and 43 more characters.");
    return key;
  }
  if (value === "") throw new Error("Enter the passphrase.");
  // 600,000 rounds of PBKDF2 take a moment, on purpose.
  els.keySubmit.textContent = "Checking…";
  try {
    return await e2e.keyFromPassphrase(value, r.crypt.info);
  } finally {
    els.keySubmit.textContent = "Unlock";
  }
}

// An invite link pasted into the address bar of its room's open page
// changes only the fragment, so nothing reloads: the key is taken here,
// out of the address bar, and kept only if it opens the room.
window.addEventListener("hashchange", async () => {
  const key = takeKeyFromFragment();
  const r = current();
  if (!key) return;
  if (!r.crypt.known) {
    if (r.name === INITIAL_ROOM) fragmentKey = key; // the first `joined` checks it
    return;
  }
  if (r.crypt.info?.key !== "link" || key === r.crypt.key) return;
  const refusal = await linkKeyRefusal(r, key, r.crypt.key, shownEnvelopes(r));
  if (refusal) {
    if (r.crypt.key) notice(r, `${refusal}, so this browser's own key for the room is kept.`);
    else if (r === current()) els.keyError.textContent = `${refusal}.`;
    return;
  }
  e2e.storeKey(r.name, key);
  if (r === current()) els.keyError.textContent = "";
  useKey(r, key);
});

els.keyForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const r = current(); // the form is this room's, even if another is shown meanwhile
  els.keyError.textContent = "";
  els.keySubmit.disabled = true;
  try {
    const key = await keyFromForm(r);
    if (!(await opensShownMessages(r, key))) {
      if (r === current()) {
        els.keyError.textContent =
          r.crypt.info.key === "passphrase"
            ? "Wrong passphrase: it does not decrypt this room's messages."
            : "That link's key does not decrypt this room's messages.";
      }
      return;
    }
    e2e.storeKey(r.name, key);
    if (r === current()) els.keyInput.value = "";
    useKey(r, key);
  } catch (error) {
    if (r === current()) els.keyError.textContent = error.message;
  } finally {
    els.keySubmit.disabled = false;
  }
});
