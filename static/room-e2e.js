// The room page's end-to-end encryption: finding the room's key (an invite
// link's fragment, this browser's storage, or the key form), placeholders for
// the texts it cannot read, and decrypting texts into message bodies. The
// cryptography itself is e2e.js.
import * as e2e from "./e2e.js";
import { ROOM, els, crypt } from "./room-state.js";
import { atBottom, updateComposer } from "./room-view.js";
import { showBody } from "./room-alerts.js";

// An invite link brings the key in its fragment (never sent to a server):
// keep it, then take it out of the address bar, and so out of the history,
// bookmarks and screenshots. "Copy invite link" puts it back for sharing.
function takeKeyFromFragment() {
  const key = e2e.keyFromLink(location.hash);
  if (!key) return null;
  e2e.storeKey(ROOM, key);
  history.replaceState(history.state, "", location.pathname + location.search);
  return key;
}
// Also kept here: with localStorage off, the page is all there is.
const fragmentKey = takeKeyFromFragment();

// ---- encrypted texts ---------------------------------------------------------

const PLACEHOLDERS = {
  link: "encrypted: you need the room's link",
  passphrase: "encrypted: you need the room's passphrase",
  insecure: "encrypted: open Parlor over HTTPS to read it",
};
const UNDECRYPTABLE = "could not be decrypted";

function missingKeyText() {
  if (!e2e.available()) return PLACEHOLDERS.insecure;
  return crypt.info.key === "passphrase" ? PLACEHOLDERS.passphrase : PLACEHOLDERS.link;
}

// Each message is placed (in id order) at once, and its text filled in when
// its decryption ends, however long each one takes.
export function fillEncryptedBody(bodyEl, envelope, plain) {
  crypt.envelopes.set(bodyEl, envelope);
  if (plain !== undefined) showBody(bodyEl, plain);
  else decryptInto(bodyEl);
}

async function decryptInto(bodyEl) {
  const keyPromise = crypt.cryptoKey;
  showPlaceholder(bodyEl, crypt.key ? "decrypting…" : missingKeyText());
  if (!crypt.key) return;
  const cryptoKey = await keyPromise;
  const plain = await e2e.decrypt(cryptoKey, ROOM, crypt.envelopes.get(bodyEl)).catch(() => null);
  // A key that came meanwhile decrypts this again.
  if (keyPromise !== crypt.cryptoKey) return;
  // Never the raw text: a message that does not authenticate says so.
  if (plain === null) {
    showPlaceholder(bodyEl, UNDECRYPTABLE, "undecryptable");
    return;
  }
  keepingView(bodyEl, () => {
    bodyEl.className = "body";
    showBody(bodyEl, plain);
  });
}

function showPlaceholder(bodyEl, text, kind = "") {
  keepingView(bodyEl, () => {
    bodyEl.className = `body placeholder ${kind}`.trim();
    bodyEl.textContent = text;
  });
  // Quotes of it say what it shows (room-actions.js).
  bodyEl.dispatchEvent(new CustomEvent("parlor:shown", { bubbles: true }));
}

// Changes a message's text without moving what the reader looks at: at the
// bottom it stays at the bottom; a message above the view that grows
// pushes the view down by as much.
function keepingView(bodyEl, change) {
  if (!bodyEl.isConnected) return change(); // not placed yet: nothing to keep
  const list = els.messages;
  const wasAtBottom = atBottom();
  const above = bodyEl.getBoundingClientRect().bottom <= list.getBoundingClientRect().top;
  const before = bodyEl.offsetHeight;
  change();
  if (wasAtBottom) list.scrollTop = list.scrollHeight;
  else if (above) list.scrollTop += bodyEl.offsetHeight - before;
}

function decryptAllShown() {
  for (const bodyEl of els.messages.querySelectorAll(".msg[data-id] .body")) {
    if (crypt.envelopes.has(bodyEl)) decryptInto(bodyEl);
  }
}

/// The room's key from now on: every message shown is decrypted again.
function useKey(key) {
  crypt.key = key;
  crypt.cryptoKey = e2e.importKey(key).catch(() => null);
  els.keyForm.hidden = true;
  explainEncryption();
  decryptAllShown();
  updateComposer();
}

/// The first `joined` of an encrypted room: show it as such and find the key.
export function setUpEncryption(info) {
  if (!info || crypt.info) return;
  crypt.info = info;
  els.e2eBadge.hidden = false;
  els.e2ePanel.hidden = false;
  const key = e2e.available() ? fragmentKey ?? e2e.loadKey(ROOM) : null;
  if (key) useKey(key);
  else askForKey();
}

function explainEncryption() {
  const passphrase = crypt.info.key === "passphrase";
  const who = passphrase ? "the passphrase" : "the invite link";
  // A key can be wrong without anything to tell (say, a passphrase typed for
  // a room without messages yet): it can always be replaced.
  els.keyChange.hidden = !crypt.key || !els.keyForm.hidden;
  els.keyChange.textContent = passphrase ? "Enter another passphrase" : "Use another invite link";
  els.e2eExplain.textContent = !e2e.available()
    ? `This room is end-to-end encrypted. ${e2e.NEEDS_HTTPS}`
    : crypt.key
      ? `Encrypted in your browser: the server stores only ciphertext. Anyone with ${who} can read it.`
      : `This room is end-to-end encrypted: you need ${who} to read it or write in it.`;
}

function askForKey() {
  explainEncryption();
  if (!e2e.available()) return;
  const passphrase = crypt.info.key === "passphrase";
  els.keyLabel.textContent = passphrase ? "The room's passphrase" : "The room's invite link";
  els.keyInput.type = passphrase ? "password" : "text";
  els.keyInput.placeholder = passphrase ? "passphrase" : `${location.origin}/chat/${ROOM}#k=…`;
  els.keyForm.hidden = false;
  els.keyChange.hidden = true;
}

els.keyChange.addEventListener("click", () => {
  askForKey();
  els.keyInput.focus();
});

/// Whether `key` opens the room: it decrypts any message shown (or there is
/// none to check against).
async function opensShownMessages(key) {
  const bodies = els.messages.querySelectorAll(".msg[data-id] .body");
  const envelopes = [...bodies].map((bodyEl) => crypt.envelopes.get(bodyEl)).filter(Boolean);
  if (envelopes.length === 0) return true;
  const cryptoKey = await e2e.importKey(key);
  const results = await Promise.allSettled(envelopes.map((envelope) => e2e.decrypt(cryptoKey, ROOM, envelope)));
  return results.some((result) => result.status === "fulfilled");
}

async function keyFromForm() {
  const value = els.keyInput.value;
  if (crypt.info.key !== "passphrase") {
    const key = e2e.keyFromLink(value) ?? (e2e.isKey(value.trim()) ? value.trim() : null);
    if (!key) throw new Error("That is not an invite link with a key: it ends in #k= and 43 more characters.");
    return key;
  }
  if (value === "") throw new Error("Enter the passphrase.");
  // 600,000 rounds of PBKDF2 take a moment, on purpose.
  els.keySubmit.textContent = "Checking…";
  try {
    return await e2e.keyFromPassphrase(value, crypt.info);
  } finally {
    els.keySubmit.textContent = "Unlock";
  }
}

els.keyForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  els.keyError.textContent = "";
  els.keySubmit.disabled = true;
  try {
    const key = await keyFromForm();
    if (!(await opensShownMessages(key))) {
      els.keyError.textContent =
        crypt.info.key === "passphrase"
          ? "Wrong passphrase: it does not decrypt this room's messages."
          : "That link's key does not decrypt this room's messages.";
      return;
    }
    e2e.storeKey(ROOM, key);
    els.keyInput.value = "";
    useKey(key);
  } catch (error) {
    els.keyError.textContent = error.message;
  } finally {
    els.keySubmit.disabled = false;
  }
});
