// Home page: check fields as they are typed, create end-to-end encrypted
// rooms, and keep the active room list live.
import * as e2e from "./e2e.js";

const ROOM_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

const form = document.getElementById("room-form");
const roomInput = document.getElementById("room");
const roomError = document.getElementById("room-error");
const nameInput = document.getElementById("name");
const nameError = document.getElementById("name-error");

function showError(input, slot, message) {
  slot.textContent = message;
  if (message) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", slot.id);
  } else {
    input.removeAttribute("aria-invalid");
  }
}

function checkRoom() {
  const room = roomInput.value.trim();
  const ok = room === "" || ROOM_PATTERN.test(room);
  showError(roomInput, roomError, ok ? "" : "room names use lowercase letters, digits, '-' and '_', and start with a letter or digit");
  return ok;
}

function checkName() {
  const name = nameInput.value.trim();
  let message = "";
  if (name === "") message = "display name must not be empty";
  else if ([...name].length > 32) message = "display name is longer than 32 characters";
  showError(nameInput, nameError, message);
  return message === "";
}

roomInput.addEventListener("input", checkRoom);
nameInput.addEventListener("input", checkName);
form.addEventListener("submit", (event) => {
  const ok = checkName() & checkRoom() & checkPassphrase();
  if (!ok) {
    event.preventDefault();
    return;
  }
  // A plain room goes as the form it is (with its CSRF token); an encrypted
  // one needs this page to make or derive its key, so it goes as JSON.
  if (privacyChoice() !== "plain") {
    event.preventDefault();
    createEncrypted(privacyChoice());
  }
});

// ---- end-to-end encrypted rooms ------------------------------------------------

const MIN_PASSPHRASE = 8;
const go = document.getElementById("go");
const goLabel = go.textContent;
const privacyError = document.getElementById("privacy-error");
const passphraseField = document.getElementById("passphrase-field");
const passphraseInput = document.getElementById("passphrase");
const passphraseError = document.getElementById("passphrase-error");
const privacyRadios = [...form.querySelectorAll('input[name="e2e"]')];

const privacyChoice = () => privacyRadios.find((radio) => radio.checked)?.value ?? "plain";

function showPrivacyChoice() {
  passphraseField.hidden = privacyChoice() !== "passphrase";
  showError(passphraseInput, passphraseError, "");
  privacyError.textContent = e2e.available() ? "" : e2e.NEEDS_HTTPS;
}

// The encrypted choices come disabled: without this script, or without
// WebCrypto (plain http to another host), nobody could make the key.
function enablePrivacyChoices() {
  if (e2e.available()) {
    for (const radio of privacyRadios) radio.disabled = false;
  }
  for (const radio of privacyRadios) radio.addEventListener("change", showPrivacyChoice);
  showPrivacyChoice();
}

function checkPassphrase() {
  if (privacyChoice() !== "passphrase") return true;
  const length = [...passphraseInput.value].length;
  const message = length >= MIN_PASSPHRASE ? "" : `the passphrase needs at least ${MIN_PASSPHRASE} characters`;
  showError(passphraseInput, passphraseError, message);
  return message === "";
}
passphraseInput.addEventListener("input", () => showError(passphraseInput, passphraseError, ""));

/// An error answer of the server, next to the field it is about.
function showServerError(answer, status) {
  const code = typeof answer.error === "string" ? answer.error : answer.error?.code;
  const message = answer.message ?? answer.error?.message ?? `the server answered ${status}`;
  if (code === "invalid_name") showError(nameInput, nameError, message);
  else if (["invalid_room", "room_exists", "private_room", "room_closed"].includes(code)) showError(roomInput, roomError, message);
  else privacyError.textContent = message;
}

/// `mode`: "link" or "passphrase". Creates (or joins) the room, then makes
/// its key here, keeps it in this browser and goes in.
async function createEncrypted(mode) {
  go.disabled = true;
  privacyError.textContent = "";
  try {
    const response = await fetch("/create_room", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ room: roomInput.value.trim(), name: nameInput.value.trim(), encryption: mode }),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) return showServerError(answer, response.status);
    // Never let someone believe a room is encrypted when it is not.
    if (answer.encryption?.key !== mode) {
      privacyError.textContent = "The server did not make this room end-to-end encrypted, so it was not opened.";
      return;
    }
    const key = mode === "link" ? linkKey(answer) : await passphraseKey(answer);
    if (!key) return;
    e2e.storeKey(answer.room, key);
    // A link room's address carries its key, for the creator to share; the
    // room page takes it out of the address bar.
    location.assign(mode === "link" ? e2e.inviteLink(location.origin, answer.room, key) : answer.url);
  } catch {
    privacyError.textContent = "Could not create the room; check the connection and try again.";
  } finally {
    go.disabled = false;
    go.textContent = goLabel;
  }
}

/// A new link room gets a fresh key. An existing one has a key already,
/// which only its invite link (or this browser, if it was here) knows.
function linkKey(answer) {
  if (answer.created) return e2e.newKey();
  const known = e2e.loadKey(answer.room);
  if (!known) {
    showError(roomInput, roomError, `#${answer.room} already exists and is end-to-end encrypted: open it with its invite link`);
  }
  return known;
}

async function passphraseKey(answer) {
  // Deliberately slow (600,000 rounds): say why nothing happens for a moment.
  go.textContent = "Deriving the key…";
  let key;
  try {
    key = await e2e.keyFromPassphrase(passphraseInput.value, answer.encryption);
  } catch (error) {
    showError(passphraseInput, passphraseError, error.message);
    return null;
  }
  if (!answer.created && !(await opensRoom(answer.room, key))) {
    showError(passphraseInput, passphraseError, `this is not the passphrase of #${answer.room}: it does not decrypt its messages`);
    return null;
  }
  return key;
}

/// Whether `key` decrypts any of the room's latest messages (true for a room
/// without any: there is nothing to check against).
async function opensRoom(room, key) {
  const response = await fetch(`/api/rooms/${room}/messages?limit=20`, { headers: { Accept: "application/json" } });
  if (!response.ok) return true; // the room page checks again
  const { messages } = await response.json();
  if (messages.length === 0) return true;
  const cryptoKey = await e2e.importKey(key);
  const results = await Promise.allSettled(messages.map((m) => e2e.decrypt(cryptoKey, room, m.text)));
  return results.some((result) => result.status === "fulfilled");
}

enablePrivacyChoices();

const list = document.getElementById("active-rooms");

function renderRooms(rooms) {
  list.replaceChildren();
  if (rooms.length === 0) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "No one is chatting right now. Start a room!";
    list.append(li);
    return;
  }
  for (const room of rooms) {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = room.url;
    link.textContent = room.name;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = `${room.members} online`;
    li.append(link, " ", count);
    list.append(li);
  }
}

async function refreshRooms() {
  try {
    const response = await fetch("/api/rooms", { headers: { Accept: "application/json" } });
    if (response.ok) renderRooms((await response.json()).rooms);
  } catch {
    // Offline for a moment: keep the last list.
  }
}

setInterval(() => {
  if (!document.hidden) refreshRooms();
}, 5000);
