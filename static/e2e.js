// End-to-end encrypted rooms, the browser's part: the server never sees a
// key, only envelopes `v1.<iv>.<ciphertext>` (docs/protocol.md). Shared by
// the home page (which makes a room's key) and the room page (which uses it).
//
// AES-256-GCM through WebCrypto; the room's name is bound in as additional
// data, so an envelope copied into another room does not decrypt there.

const VERSION = "v1";
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
// PBKDF2-SHA256's rounds and salt for passphrase rooms (docs/protocol.md):
// the least this page accepts from a server.
const MIN_ITERATIONS = 600000;
const MIN_SALT_BYTES = 16;
const STORAGE_PREFIX = "parlor:key:";

/// WebCrypto exists only in secure contexts (HTTPS, or http on localhost):
/// elsewhere no encrypted room can be made or read.
export function available() {
  return Boolean(globalThis.isSecureContext && globalThis.crypto?.subtle);
}

export const NEEDS_HTTPS =
  "End-to-end encrypted rooms need a secure connection: open Parlor over HTTPS (or on localhost).";

// ---- base64url without padding ----------------------------------------------

export function toBase64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/// Throws on anything that is not unpadded base64url.
export function fromBase64url(text) {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) throw new Error("not base64url");
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

const base64urlLength = (bytes) => Math.ceil((bytes * 4) / 3);

// ---- keys ---------------------------------------------------------------------

/// A new room key: 32 random bytes, as base64url (43 characters).
export function newKey() {
  return toBase64url(crypto.getRandomValues(new Uint8Array(KEY_BYTES)));
}

/// Whether `text` is a key in the form `newKey` makes.
export function isKey(text) {
  try {
    return typeof text === "string" && fromBase64url(text).length === KEY_BYTES;
  } catch {
    return false;
  }
}

/// A passphrase room's key: PBKDF2-SHA256 over the passphrase with the
/// room's salt and iteration count (the `encryption` object the server
/// sends), as base64url. Slow on purpose: that is what makes guessing slow.
export async function keyFromPassphrase(passphrase, encryption) {
  // The parameters come from the server. Fewer rounds or a short salt would
  // make a stolen database's passphrases cheap to guess: never accept them.
  if (!(encryption.iterations >= MIN_ITERATIONS) || fromBase64url(encryption.salt ?? "").length < MIN_SALT_BYTES) {
    throw new Error("The server asks for weaker passphrase protection than Parlor's, so the passphrase was not used.");
  }
  const material = await crypto.subtle.importKey("raw", new TextEncoder().encode(passphrase), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: fromBase64url(encryption.salt), iterations: encryption.iterations },
    material,
    KEY_BYTES * 8,
  );
  return toBase64url(new Uint8Array(bits));
}

/// The CryptoKey for a base64url room key; it cannot be read back out.
export function importKey(key) {
  return crypto.subtle.importKey("raw", fromBase64url(key), "AES-GCM", false, ["encrypt", "decrypt"]);
}

/// The key in an invite link's fragment (`#k=<key>`), or null. Takes a
/// whole link or just its fragment.
export function keyFromLink(link) {
  const hash = String(link).trim().split("#")[1] ?? "";
  const key = new URLSearchParams(hash).get("k");
  return isKey(key) ? key : null;
}

/// The invite link that carries the key: the fragment never reaches a
/// server, so only the people given the link can read the room.
export const inviteLink = (origin, room, key) => `${origin}/chat/${room}#k=${key}`;

// The page keeps each room's key (never a passphrase) so a reload can read
// the room. localStorage can be off (private modes): then the key lives as
// long as the page.
export function storeKey(room, key) {
  try {
    localStorage.setItem(STORAGE_PREFIX + room, key);
  } catch {
    // Not stored: the page still has it.
  }
}

export function forgetKey(room) {
  try {
    localStorage.removeItem(STORAGE_PREFIX + room);
  } catch {
    // Nothing stored to forget.
  }
}

export function loadKey(room) {
  try {
    const key = localStorage.getItem(STORAGE_PREFIX + room);
    return isKey(key) ? key : null;
  } catch {
    return null;
  }
}

// ---- envelopes ------------------------------------------------------------------

const additionalData = (room) => new TextEncoder().encode(`parlor:${VERSION}:${room}`);

/// `text` encrypted for `room`: `v1.<iv>.<ciphertext and tag>`.
export async function encrypt(cryptoKey, room, text) {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: additionalData(room) },
    cryptoKey,
    new TextEncoder().encode(text),
  );
  return `${VERSION}.${toBase64url(iv)}.${toBase64url(new Uint8Array(sealed))}`;
}

/// The text inside an envelope. Throws when it is not an envelope, or does
/// not authenticate under this key for this room (tampered, or another key).
export async function decrypt(cryptoKey, room, envelope) {
  const parts = String(envelope).split(".");
  if (parts.length !== 3 || parts[0] !== VERSION) throw new Error("not an encrypted message");
  const iv = fromBase64url(parts[1]);
  const sealed = fromBase64url(parts[2]);
  if (iv.length !== IV_BYTES || sealed.length < TAG_BYTES) throw new Error("not an encrypted message");
  const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: additionalData(room) }, cryptoKey, sealed);
  // fatal: bytes that are not UTF-8 are an error, not replacement characters.
  return new TextDecoder("utf-8", { fatal: true }).decode(plain);
}

/// How many bytes the envelope of `text` takes: what the server's size
/// limit counts in an encrypted room.
export function envelopeBytes(text) {
  const plain = new TextEncoder().encode(text).length;
  return VERSION.length + 1 + base64urlLength(IV_BYTES) + 1 + base64urlLength(plain + TAG_BYTES);
}
