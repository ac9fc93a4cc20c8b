// End-to-end encrypted rooms, driven in headless Chromium: the pages encrypt
// and decrypt, and the server (its database and its log) never holds a word
// that was typed.
//
// The tests of the link room build on each other (one conversation, read by
// more and more people), so they run in this order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import {
  SHOTS,
  arriveHeld,
  bodies,
  connected,
  eventually,
  ids,
  launchBrowser,
  neverSent,
  person,
  post,
  say,
  sentOfType,
  serverAndBrowser,
  waitForMessage,
  wiretap,
} from "./harness.mjs";

const LINK_ROOM = "secret-link";
const PHRASE_ROOM = "secret-phrase";
const PASSPHRASE = "correct horse battery staple";
const NEED_LINK = "encrypted: you need the room's link";
const NEED_PASSPHRASE = "encrypted: you need the room's passphrase";
const UNDECRYPTABLE = "could not be decrypted";
const ENVELOPE = /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22,}$/;

// Everything typed into an encrypted room (or sent as plaintext to one):
// none of it may reach the database or the server's log.
const SECRETS = {
  alpha: "alpha: the eagle lands at midnight by the old mill",
  bravo: "bravo: bring the blue folder, not the red one",
  hostile: "<img src=x onerror=window.pwned=1> charlie: markup stays text",
  delta: "delta: sealed by a client outside the browser",
  echo: "echo: this plaintext must be refused by the server",
  foxtrot: "foxtrot: resent after its confirmation was lost",
  golf: "golf: only those with the passphrase read this",
  hotel: "hotel: the passphrase opened the room",
  india: "india: written before anyone could check a passphrase",
  juliet: "juliet: typed before the page knew the room was encrypted",
  kilo: "kilo: a key says encrypted, the server says plain",
  lima: "lima: typed without the key, before the room was known",
};

let server;
let browser;
let alice; // the link room's creator, here from the first test to the screenshots
let bob;
let linkKey; // the link room's key, as Alice's browser keeps it
const stored = []; // envelopes read back through the history API

serverAndBrowser({
  server: { captureLog: true },
  use: (s, b) => ([server, browser] = [s, b]),
  current: () => [server, browser],
});

// ---- helpers -------------------------------------------------------------------

/// Waits until the page shows exactly these message texts, then checks them
/// (so a timeout shows what was there instead).
async function expectBodies(page, expected, timeout = 15000) {
  await page
    .waitForFunction(
      (want) =>
        JSON.stringify([...document.querySelectorAll("#messages .msg[data-id] .body")].map((e) => e.textContent)) ===
        JSON.stringify(want),
      expected,
      { timeout },
    )
    .catch(() => {});
  assert.deepEqual(await bodies(page), expected);
}

/// Opens a room page in a browser that has no name yet: the page asks for
/// one, then joins.
async function arrive(page, url, name) {
  await page.goto(url);
  await page.waitForSelector("#name-dialog[open]");
  await page.fill("#name-input", name);
  await page.click("#name-form button[type=submit]");
  await connected(page);
}

/// Creates a room on the home page with one of the privacy choices.
async function createOnHomePage(page, { name, room, privacy, passphrase }) {
  await page.goto(server.url + "/");
  await page.fill("#name", name);
  await page.fill("#room", room);
  await page.check(`input[name="e2e"][value="${privacy}"]`);
  if (passphrase !== undefined) await page.fill("#passphrase", passphrase);
  await page.click("#go");
}

const storedKey = (page, room) => page.evaluate((r) => localStorage.getItem(`parlor:key:${r}`), room);

const noScriptErrors = (...people) => {
  for (const { page } of people) assert.deepEqual(page.errors, [], "script errors on the page");
};

// The protocol's envelopes made and opened here in node, from the spec, not
// from the page's code: the page must agree with them both ways.
const aad = (room) => Buffer.from(`parlor:v1:${room}`);

async function seal(key, room, text) {
  const cryptoKey = await crypto.subtle.importKey("raw", Buffer.from(key, "base64url"), "AES-GCM", false, ["encrypt"]);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad(room) }, cryptoKey, Buffer.from(text));
  return `v1.${Buffer.from(iv).toString("base64url")}.${Buffer.from(sealed).toString("base64url")}`;
}

async function open(key, room, envelope) {
  const [, iv, sealed] = envelope.split(".");
  const cryptoKey = await crypto.subtle.importKey("raw", Buffer.from(key, "base64url"), "AES-GCM", false, ["decrypt"]);
  const plain = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: Buffer.from(iv, "base64url"), additionalData: aad(room) },
    cryptoKey,
    Buffer.from(sealed, "base64url"),
  );
  return Buffer.from(plain).toString("utf8");
}

async function passphraseKey(passphrase, encryption) {
  const material = await crypto.subtle.importKey("raw", Buffer.from(passphrase), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: Buffer.from(encryption.salt, "base64url"), iterations: encryption.iterations },
    material,
    256,
  );
  return Buffer.from(bits).toString("base64url");
}

/// The room's messages as the server keeps them, oldest first.
async function history(room) {
  const answer = await (await fetch(`${server.url}/api/rooms/${room}/messages?limit=100`)).json();
  return answer.messages.reverse();
}

/// A WebSocket client outside any browser, as a script would be.
async function rawClient(room, name) {
  const socket = new WebSocket(server.url.replace(/^http/, "ws") + "/ws", { origin: server.url });
  const frames = [];
  let arrived = () => {};
  socket.on("message", (data) => {
    frames.push(JSON.parse(String(data)));
    arrived();
  });
  await once(socket, "open");
  /// The first frame (not yet taken) that `wanted` accepts.
  const next = async (wanted, timeout = 10000) => {
    const deadline = Date.now() + timeout;
    for (;;) {
      const at = frames.findIndex(wanted);
      if (at >= 0) return frames.splice(at, 1)[0];
      assert.ok(Date.now() < deadline, `no such frame; got ${JSON.stringify(frames)}`);
      await new Promise((resolve) => {
        arrived = resolve;
        setTimeout(resolve, 100);
      });
    }
  };
  const send = (frame) => socket.send(JSON.stringify(frame));
  send({ type: "join_room", room, name });
  const joined = await next((f) => f.type === "joined");
  return { socket, joined, next, send, frames };
}

// ---- the link room -------------------------------------------------------------

test("a room made end-to-end encrypted on the home page is joined through its invite link; both read each other", async () => {
  alice = await person(browser);
  await alice.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
  await createOnHomePage(alice.page, { name: "Alice", room: LINK_ROOM, privacy: "link" });
  await alice.page.waitForURL((url) => url.pathname === `/chat/${LINK_ROOM}`);
  await connected(alice.page);

  // The key stays in the browser and leaves the address bar.
  linkKey = await storedKey(alice.page, LINK_ROOM);
  assert.match(linkKey ?? "", /^[A-Za-z0-9_-]{43}$/, "a 32-byte key kept for the room");
  await alice.page.waitForFunction(() => location.hash === "");
  assert.equal(alice.page.url(), `${server.url}/chat/${LINK_ROOM}`);
  assert.equal(await alice.page.isVisible("#e2e-badge"), true, "the room is marked end-to-end encrypted");
  assert.match(await alice.page.textContent("#e2e-badge"), /End-to-end encrypted/);
  assert.match(await alice.page.textContent("#e2e-explain"), /server stores only ciphertext/);
  assert.equal(await alice.page.isVisible("#key-form"), false, "nothing to unlock");

  // The invite link carries the key again.
  await alice.page.click("#copy-link");
  await alice.page.waitForFunction(() => document.getElementById("copy-link").textContent === "Link copied");
  const invite = await alice.page.evaluate(() => navigator.clipboard.readText());
  assert.equal(invite, `${server.url}/chat/${LINK_ROOM}#k=${linkKey}`);

  // Bob comes in through the link, in a browser of his own. Everything his
  // page sends is recorded on the way.
  bob = await person(browser);
  const bobTap = await wiretap(bob.page);
  await arrive(bob.page, invite, "Bob");
  // Kept once it proves to open the room's messages.
  await eventually(async () => (await storedKey(bob.page, LINK_ROOM)) === linkKey, "Bob's browser keeps the link's key");
  assert.equal(new URL(bob.page.url()).hash, "", "the key left Bob's address bar too");
  assert.equal(await bob.page.isVisible("#e2e-badge"), true);

  await say(alice.page, SECRETS.alpha);
  await waitForMessage(bob.page, SECRETS.alpha);
  await say(bob.page, SECRETS.bravo);
  await waitForMessage(alice.page, SECRETS.bravo);
  await say(alice.page, SECRETS.hostile);
  const expected = [SECRETS.alpha, SECRETS.bravo, SECRETS.hostile];
  for (const { page } of [alice, bob]) {
    await expectBodies(page, expected);
    // Decrypted text is text: nothing in it runs or becomes markup.
    assert.equal(await page.locator("#messages img").count(), 0);
    assert.equal(await page.evaluate(() => window.pwned), undefined);
    assert.equal(await page.locator("#messages .body.placeholder").count(), 0);
  }
  const own = await alice.page.$$eval("#messages .msg.own .body", (els) => els.map((e) => e.textContent));
  assert.deepEqual(own, [SECRETS.alpha, SECRETS.hostile], "Alice's own messages are hers");

  // What Bob's page sent, and what the server keeps, are envelopes that
  // decrypt (by the spec, outside the browser) to what was typed.
  const sends = sentOfType(bobTap, "send_message");
  assert.equal(sends.length, 1);
  assert.match(sends[0].text, ENVELOPE);
  neverSent(bobTap, "blue folder");
  const messages = await history(LINK_ROOM);
  assert.deepEqual(
    messages.map((m) => m.user),
    ["Alice", "Bob", "Alice"],
  );
  for (const m of messages) assert.match(m.text, ENVELOPE);
  assert.deepEqual(await Promise.all(messages.map((m) => open(linkKey, LINK_ROOM, m.text))), expected);
  stored.push(...messages.map((m) => m.text));
  noScriptErrors(alice, bob);
});

test("without the key the messages are placeholders and the composer is off, until the invite link is pasted", async () => {
  const carol = await person(browser);
  await arrive(carol.page, `${server.url}/chat/${LINK_ROOM}`, "Carol");
  await expectBodies(carol.page, [NEED_LINK, NEED_LINK, NEED_LINK]);
  assert.equal(await carol.page.locator("#messages .body.placeholder").count(), 3, "styled as placeholders");
  assert.equal(await carol.page.isDisabled("#text"), true, "the composer is off");
  assert.equal(await carol.page.isDisabled("#send"), true);
  assert.match(await carol.page.textContent("#composer-note"), /end-to-end encrypted.*invite link/);
  assert.equal(await carol.page.isVisible("#e2e-badge"), true);
  assert.equal(await carol.page.isVisible("#key-form"), true, "a box for the invite link");
  assert.equal(await carol.page.isVisible("#key-cancel"), false, "no key to fall back on");
  assert.equal(await carol.page.textContent("#key-label"), "The room's invite link");
  assert.equal(await storedKey(carol.page, LINK_ROOM), null);

  // Not a link with a key; then a link with another room's key.
  await carol.page.fill("#key-input", `${server.url}/chat/${LINK_ROOM}`);
  await carol.page.click("#key-submit");
  await carol.page.waitForFunction(() => document.getElementById("key-error").textContent.includes("#k="));
  const otherKey = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  await carol.page.fill("#key-input", `${server.url}/chat/${LINK_ROOM}#k=${otherKey}`);
  await carol.page.click("#key-submit");
  await carol.page.waitForFunction(() => document.getElementById("key-error").textContent.includes("does not decrypt"));
  await expectBodies(carol.page, [NEED_LINK, NEED_LINK, NEED_LINK]);
  assert.equal(await carol.page.isDisabled("#text"), true);
  assert.equal(await storedKey(carol.page, LINK_ROOM), null, "a wrong key is not kept");

  // The real invite link opens the room.
  await carol.page.fill("#key-input", `${server.url}/chat/${LINK_ROOM}#k=${linkKey}`);
  await carol.page.click("#key-submit");
  await expectBodies(carol.page, [SECRETS.alpha, SECRETS.bravo, SECRETS.hostile]);
  assert.equal(await carol.page.isDisabled("#text"), false, "the composer is on");
  assert.equal(await carol.page.textContent("#composer-note"), "");
  assert.equal(await carol.page.isVisible("#key-form"), false);
  assert.equal(await storedKey(carol.page, LINK_ROOM), linkKey);
  await carol.context.close();
});

test("an invite link with a wrong key replaces no key that works, and passes for none", async () => {
  const wrongKey = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
  // Mona's browser has the key of the room she made; an old or mistyped link
  // does not replace it.
  const mona = await person(browser);
  await createOnHomePage(mona.page, { name: "Mona", room: "monas-room", privacy: "link" });
  await mona.page.waitForURL("**/chat/monas-room");
  await connected(mona.page);
  await say(mona.page, "before the wrong link");
  await waitForMessage(mona.page, "before the wrong link");
  const monasKey = await storedKey(mona.page, "monas-room");
  await mona.page.goto("about:blank");
  await mona.page.goto(`${server.url}/chat/monas-room#k=${wrongKey}`);
  await mona.page.locator("#messages .notice", { hasText: "key does not decrypt this room's messages" }).waitFor();
  await waitForMessage(mona.page, "before the wrong link");
  assert.equal(await storedKey(mona.page, "monas-room"), monasKey, "the key that works is kept");
  await say(mona.page, "after the wrong link");
  await waitForMessage(mona.page, "after the wrong link");
  const last = (await history("monas-room")).at(-1);
  assert.equal(await open(monasKey, "monas-room", last.text), "after the wrong link", "sealed with the key that works");
  // The same link pasted into the open page's address bar (only the
  // fragment changes, nothing reloads).
  await mona.page.evaluate((k) => (location.hash = `#k=${k}`), wrongKey);
  await eventually(
    async () => (await mona.page.locator("#messages .notice", { hasText: "own key for the room is kept" }).count()) === 1,
    "Mona is told her key is kept",
  );
  assert.equal(new URL(mona.page.url()).hash, "", "the key left the address bar");
  assert.equal(await storedKey(mona.page, "monas-room"), monasKey);
  // In a room without messages nothing can be checked: no key is replaced.
  await createOnHomePage(mona.page, { name: "Mona", room: "monas-empty", privacy: "link" });
  await mona.page.waitForURL("**/chat/monas-empty");
  await connected(mona.page);
  const emptyKey = await storedKey(mona.page, "monas-empty");
  await mona.page.goto("about:blank");
  await mona.page.goto(`${server.url}/chat/monas-empty#k=${wrongKey}`);
  await mona.page.locator("#messages .notice", { hasText: "cannot be checked" }).waitFor();
  await mona.page.evaluate((k) => (location.hash = `#k=${k}`), wrongKey);
  await eventually(
    async () => (await mona.page.locator("#messages .notice", { hasText: "cannot be checked" }).count()) === 2,
    "told again when pasted",
  );
  assert.equal(await storedKey(mona.page, "monas-empty"), emptyKey, "the room's key is kept");
  await say(mona.page, "sealed with the room's key");
  await waitForMessage(mona.page, "sealed with the room's key");
  assert.equal(await open(emptyKey, "monas-empty", (await history("monas-empty")).at(-1).text), "sealed with the room's key");

  // Nell has no key of her own: the wrong link's key is refused, and what she
  // typed before the page knew is not sealed with it (nobody could read it).
  const nell = await person(browser);
  const { tap, release } = await arriveHeld(nell.page, `${server.url}/chat/${LINK_ROOM}#k=${wrongKey}`, "Nell");
  await say(nell.page, "nell: typed under a wrong key");
  release();
  await expectRefusedHere(nell.page, /does not have its invite link/);
  await nell.page.waitForFunction(() => document.getElementById("key-error").textContent.includes("ask for the link again"));
  assert.equal(await nell.page.isVisible("#key-form"), true, "asked for the right link");
  assert.equal(await nell.page.isDisabled("#text"), true);
  await expectBodies(nell.page, [NEED_LINK, NEED_LINK, NEED_LINK]);
  assert.equal(await storedKey(nell.page, LINK_ROOM), null, "a wrong key is not kept");
  assert.deepEqual(sentOfType(tap, "send_message"), [], "nothing sent");
  // The right link, pasted into the open page's address bar, opens it.
  await nell.page.evaluate((k) => (location.hash = `#k=${k}`), linkKey);
  await expectBodies(nell.page, [SECRETS.alpha, SECRETS.bravo, SECRETS.hostile]);
  assert.equal(new URL(nell.page.url()).hash, "", "the key left the address bar");
  assert.equal(await storedKey(nell.page, LINK_ROOM), linkKey);
  assert.equal(await nell.page.isVisible("#key-form"), false);
  assert.equal(await nell.page.isDisabled("#text"), false);
  noScriptErrors(mona, nell);
  await mona.context.close();
  await nell.context.close();
});

test("a tampered, foreign or misplaced envelope shows 'could not be decrypted'; plaintext is refused", async () => {
  const mallory = await rawClient(LINK_ROOM, "Mallory");
  assert.deepEqual(
    { ...mallory.joined.encryption, salt: "" },
    { scheme: "aes-256-gcm", key: "link", salt: "", iterations: 600000 },
    "joined says how the room is encrypted",
  );
  assert.match(mallory.joined.encryption.salt, /^[A-Za-z0-9_-]{22}$/);
  assert.deepEqual(
    mallory.joined.history.map((m) => m.text),
    stored,
    "joined's history holds the envelopes",
  );

  // Plaintext first: refused, and delivered to no one.
  mallory.send({ type: "send_message", room: LINK_ROOM, text: SECRETS.echo, nonce: "m-0" });
  const refused = await mallory.next((f) => f.type === "error");
  assert.equal(refused.code, "encryption_required");

  // A real envelope with one character of its ciphertext changed.
  const [, iv, sealed] = stored[0].split(".");
  const flipped = (sealed[0] === "A" ? "B" : "A") + sealed.slice(1);
  const tampered = `v1.${iv}.${flipped}`;
  // Well-formed, but under another key; and under the room's key for another room.
  const foreign = await seal(Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url"), LINK_ROOM, "foreign");
  const misplaced = await seal(linkKey, "another-room", "misplaced");
  // And one made right, outside the browser: the page must read it.
  const good = await seal(linkKey, LINK_ROOM, SECRETS.delta);
  const sentIds = [];
  for (const [i, text] of [tampered, foreign, misplaced, good].entries()) {
    mallory.send({ type: "send_message", room: LINK_ROOM, text, nonce: `m-${i + 1}` });
    const echo = await mallory.next((f) => f.type === "message" && f.nonce === `m-${i + 1}`);
    assert.equal(echo.text, text);
    sentIds.push(echo.id);
  }
  stored.push(tampered, foreign, misplaced, good);

  const expected = [SECRETS.alpha, SECRETS.bravo, SECRETS.hostile, UNDECRYPTABLE, UNDECRYPTABLE, UNDECRYPTABLE, SECRETS.delta];
  for (const { page } of [alice, bob]) {
    await expectBodies(page, expected);
    for (const id of sentIds.slice(0, 3)) {
      assert.equal(await page.getAttribute(`.msg[data-id="${id}"] .body`, "class"), "body placeholder undecryptable");
    }
    const shown = await page.textContent("#messages");
    assert.ok(!shown.includes(sealed) && !shown.includes(flipped), "never the raw envelope");
    assert.ok(!shown.includes(SECRETS.echo), "the refused plaintext reached no one");
  }
  mallory.socket.close();
  noScriptErrors(alice, bob);
});

test("a message whose confirmation was lost is resent as the same envelope after reconnecting, and stored once", async () => {
  const rita = await person(browser);
  let dropping = true;
  let dropped = 0;
  const tap = await wiretap(rita.page, (text) => {
    const frame = JSON.parse(text);
    if (!dropping || frame.type !== "message" || !frame.nonce) return false;
    dropped += 1;
    return true;
  });
  await arrive(rita.page, `${server.url}/chat/${LINK_ROOM}#k=${linkKey}`, "Rita");
  await say(rita.page, SECRETS.foxtrot);
  await waitForMessage(alice.page, SECRETS.foxtrot);
  await eventually(() => dropped > 0, "Rita's confirmation reached the route");
  assert.equal(dropped, 1);
  assert.equal(await rita.page.locator("#messages .msg.pending").count(), 1);

  // The connection drops; the page reconnects by itself and resends.
  dropping = false;
  await tap.close();
  await rita.page.waitForFunction(() => document.querySelectorAll("#messages .msg.pending").length === 0, null, {
    timeout: 20000,
  });
  const sends = sentOfType(tap, "send_message");
  assert.equal(sends.length, 2, "sent again after reconnecting");
  assert.equal(sends[1].text, sends[0].text, "the same envelope");
  assert.equal(sends[1].nonce, sends[0].nonce);
  assert.match(sends[0].text, ENVELOPE);
  const messages = await history(LINK_ROOM);
  assert.equal(messages.filter((m) => m.text === sends[0].text).length, 1, "stored once");
  stored.push(sends[0].text);
  await expectBodies(rita.page, [SECRETS.alpha, SECRETS.bravo, SECRETS.hostile, ...Array(3).fill(UNDECRYPTABLE), SECRETS.delta, SECRETS.foxtrot]);
  await rita.context.close();
});

test("after a reload the history decrypts with the key kept in the browser, in id order however decryptions finish", async () => {
  // Later messages finish decrypting first: the order must come from the ids.
  await alice.context.addInitScript(() => {
    const decrypt = SubtleCrypto.prototype.decrypt;
    let calls = 0;
    SubtleCrypto.prototype.decrypt = function (...args) {
      const delay = Math.max(0, 600 - 80 * calls++);
      return decrypt.apply(this, args).then((plain) => new Promise((resolve) => setTimeout(() => resolve(plain), delay)));
    };
  });
  await alice.page.goto(`${server.url}/chat/${LINK_ROOM}`);
  await connected(alice.page);
  assert.equal(new URL(alice.page.url()).hash, "");
  const expected = [
    SECRETS.alpha,
    SECRETS.bravo,
    SECRETS.hostile,
    ...Array(3).fill(UNDECRYPTABLE),
    SECRETS.delta,
    SECRETS.foxtrot,
  ];
  await expectBodies(alice.page, expected);
  const seen = await ids(alice.page);
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b), "in id order");
  assert.equal(new Set(seen).size, seen.length, "each once");
  assert.equal(await alice.page.isDisabled("#text"), false);
  noScriptErrors(alice);
});

test("screenshots of an encrypted room at desktop and phone width", async () => {
  const phoebe = await person(browser, { width: 390, height: 844 });
  await arrive(phoebe.page, `${server.url}/chat/${LINK_ROOM}#k=${linkKey}`, "Phoebe");
  await say(phoebe.page, "On my way, see you there.");
  for (const { page } of [alice, phoebe]) await waitForMessage(page, "On my way, see you there.");
  await alice.page.screenshot({ path: join(SHOTS, "e2e-room-desktop.png") });
  await phoebe.page.screenshot({ path: join(SHOTS, "e2e-room-phone.png") });
  // At phone width nothing sticks out sideways, and the lock stays in view.
  assert.ok(await phoebe.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), "no sideways scrolling");
  const badge = await phoebe.page.locator("#e2e-badge").boundingBox();
  assert.ok(badge && badge.x >= 0 && badge.x + badge.width <= 390, "the badge is on screen");
  const composer = await phoebe.page.locator("#composer").boundingBox();
  assert.ok(composer && composer.y + composer.height <= 844, "the composer is on screen");
  await phoebe.context.close();
  await alice.context.close();
  await bob.context.close();
});

// ---- the passphrase room -------------------------------------------------------

test("a passphrase room: the home page makes it; another person types the passphrase to read it, a wrong one opens nothing", async () => {
  const pia = await person(browser);
  // A passphrase too short is refused before anything is sent.
  await createOnHomePage(pia.page, { name: "Pia", room: PHRASE_ROOM, privacy: "passphrase", passphrase: "short" });
  await pia.page.waitForFunction(() => document.getElementById("passphrase-error").textContent.includes("at least 8"));
  assert.equal(new URL(pia.page.url()).pathname, "/");
  await pia.page.fill("#passphrase", PASSPHRASE);
  await pia.page.click("#go");
  await pia.page.waitForURL(`${server.url}/chat/${PHRASE_ROOM}`);
  await connected(pia.page);
  assert.equal(await pia.page.isVisible("#e2e-badge"), true);

  // The key kept is the one PBKDF2 makes from the passphrase and the
  // room's salt; the passphrase itself is kept nowhere.
  const { encryption } = await post(server.url, "/create_room", { room: PHRASE_ROOM });
  assert.equal(encryption.key, "passphrase");
  assert.equal(await storedKey(pia.page, PHRASE_ROOM), await passphraseKey(PASSPHRASE, encryption));
  const kept = await pia.page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  assert.ok(!kept.includes("horse"), "the passphrase is not stored");

  // The composer refuses what would not fit once encrypted: 3,041 bytes
  // make an envelope of 4,096 (the limit), 3,042 one over it.
  await pia.page.fill("#text", "x".repeat(3042));
  await pia.page.press("#text", "Enter");
  await pia.page.waitForFunction(() => document.getElementById("composer-note").textContent.includes("once encrypted"));
  assert.equal(await pia.page.locator("#messages .msg").count(), 0, "not sent");
  await pia.page.fill("#text", "x".repeat(3041));
  await pia.page.press("#text", "Enter");
  await waitForMessage(pia.page, "x".repeat(3041));
  await say(pia.page, SECRETS.golf);
  await waitForMessage(pia.page, SECRETS.golf);

  // Quinn has no key: placeholders, no composer, a passphrase box.
  const quinn = await person(browser);
  await arrive(quinn.page, `${server.url}/chat/${PHRASE_ROOM}`, "Quinn");
  await expectBodies(quinn.page, [NEED_PASSPHRASE, NEED_PASSPHRASE]);
  assert.equal(await quinn.page.isDisabled("#text"), true);
  assert.match(await quinn.page.textContent("#composer-note"), /end-to-end encrypted.*passphrase/);
  assert.equal(await quinn.page.getAttribute("#key-input", "type"), "password");

  // A wrong passphrase: said so, and the messages stay placeholders.
  await quinn.page.fill("#key-input", "incorrect horse battery staple");
  await quinn.page.click("#key-submit");
  await quinn.page.waitForFunction(() => document.getElementById("key-error").textContent.startsWith("Wrong passphrase"), null, {
    timeout: 15000,
  });
  await expectBodies(quinn.page, [NEED_PASSPHRASE, NEED_PASSPHRASE]);
  assert.equal(await quinn.page.isDisabled("#text"), true);
  assert.equal(await storedKey(quinn.page, PHRASE_ROOM), null);

  // The right one.
  await quinn.page.fill("#key-input", PASSPHRASE);
  await quinn.page.click("#key-submit");
  await expectBodies(quinn.page, ["x".repeat(3041), SECRETS.golf]);
  assert.equal(await quinn.page.isDisabled("#text"), false);
  assert.equal(await storedKey(quinn.page, PHRASE_ROOM), await storedKey(pia.page, PHRASE_ROOM));
  await say(quinn.page, SECRETS.hotel);
  await waitForMessage(pia.page, SECRETS.hotel);

  // A passphrase room's invite link carries no key.
  await pia.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
  await pia.page.click("#copy-link");
  await pia.page.waitForFunction(() => document.getElementById("copy-link").textContent === "Link copied");
  assert.equal(await pia.page.evaluate(() => navigator.clipboard.readText()), `${server.url}/chat/${PHRASE_ROOM}`);

  for (const m of await history(PHRASE_ROOM)) {
    assert.match(m.text, ENVELOPE);
    stored.push(m.text);
  }
  await pia.context.close();
  await quinn.context.close();
});

test("the home page: a wrong passphrase for an existing room, an existing plain room, and a link room without its link", async () => {
  const rex = await person(browser);
  await createOnHomePage(rex.page, { name: "Rex", room: PHRASE_ROOM, privacy: "passphrase", passphrase: "not the passphrase" });
  await rex.page.waitForFunction(() => document.getElementById("passphrase-error").textContent.includes("not the passphrase of"), null, {
    timeout: 15000,
  });
  assert.equal(new URL(rex.page.url()).pathname, "/");
  assert.equal(await storedKey(rex.page, PHRASE_ROOM), null);

  await post(server.url, "/create_room", { room: "plain-talk" });
  await createOnHomePage(rex.page, { name: "Rex", room: "plain-talk", privacy: "link" });
  await rex.page.waitForFunction(() => document.getElementById("room-error").textContent !== "");
  assert.equal(await rex.page.getAttribute("#room", "aria-invalid"), "true");
  assert.equal(new URL(rex.page.url()).pathname, "/");

  await createOnHomePage(rex.page, { name: "Rex", room: LINK_ROOM, privacy: "link" });
  await rex.page.waitForFunction(() => document.getElementById("room-error").textContent.includes("invite link"));
  assert.equal(new URL(rex.page.url()).pathname, "/");
  assert.equal(await storedKey(rex.page, LINK_ROOM), null, "no new key made for a room that has one");

  // The plain choice is still a plain form post into a plain room.
  await rex.page.goto(server.url + "/");
  assert.equal(await rex.page.isChecked('input[name="e2e"][value="plain"]'), true, "not encrypted by default");
  assert.equal(await rex.page.isVisible("#passphrase"), false);
  await rex.page.fill("#name", "Rex");
  await rex.page.fill("#room", "plain-again");
  await Promise.all([rex.page.waitForURL(`${server.url}/chat/plain-again`), rex.page.click("#go")]);
  await connected(rex.page);
  assert.equal(await rex.page.isVisible("#e2e-badge"), false);
  await say(rex.page, "plain words");
  await waitForMessage(rex.page, "plain words");
  assert.deepEqual((await history("plain-again")).map((m) => m.text), ["plain words"]);
  await rex.context.close();
});

test("a wrong passphrase for a room without messages cannot be caught at once, but can be replaced from the room", async () => {
  const sam = await person(browser);
  await createOnHomePage(sam.page, { name: "Sam", room: "secret-empty", privacy: "passphrase", passphrase: PASSPHRASE });
  await sam.page.waitForURL(`${server.url}/chat/secret-empty`);
  await connected(sam.page);
  // Nothing to check a passphrase against yet: Tess's wrong one gets her in.
  const tess = await person(browser);
  await createOnHomePage(tess.page, { name: "Tess", room: "secret-empty", privacy: "passphrase", passphrase: "a mistyped passphrase" });
  await tess.page.waitForURL(`${server.url}/chat/secret-empty`);
  await connected(tess.page);
  await say(sam.page, SECRETS.india);
  await expectBodies(tess.page, [UNDECRYPTABLE]);

  await tess.page.click("#key-change");
  assert.equal(await tess.page.textContent("#key-change"), "Enter another passphrase");
  assert.equal(await tess.page.isVisible("#key-form"), true);
  assert.equal(await tess.page.isVisible("#key-change"), false);
  // Changing one's mind: Cancel, or Escape, keeps the key held.
  await tess.page.fill("#key-input", "half typed");
  await tess.page.click("#key-cancel");
  assert.equal(await tess.page.isVisible("#key-form"), false, "cancelled");
  assert.equal(await tess.page.isVisible("#key-change"), true);
  await tess.page.click("#key-change");
  assert.equal(await tess.page.inputValue("#key-input"), "", "nothing half typed is kept");
  await tess.page.press("#key-input", "Escape");
  assert.equal(await tess.page.isVisible("#key-form"), false, "Escape cancels too");
  assert.equal(await tess.page.isDisabled("#text"), false, "the key held is still used");
  await tess.page.click("#key-change");
  await tess.page.fill("#key-input", "still not it");
  await tess.page.click("#key-submit");
  await tess.page.waitForFunction(() => document.getElementById("key-error").textContent.startsWith("Wrong passphrase"), null, {
    timeout: 15000,
  });
  await tess.page.fill("#key-input", PASSPHRASE);
  await tess.page.click("#key-submit");
  await expectBodies(tess.page, [SECRETS.india]);
  assert.equal(await storedKey(tess.page, "secret-empty"), await storedKey(sam.page, "secret-empty"));
  assert.equal(await tess.page.isVisible("#key-form"), false);
  for (const m of await history("secret-empty")) stored.push(m.text);
  await sam.context.close();
  await tess.context.close();
});

test("over plain http to another host, encrypted rooms say they need HTTPS", async () => {
  // parlor.test is this server, but not a secure context: no WebCrypto.
  const insecure = await launchBrowser({ args: ["--host-resolver-rules=MAP parlor.test 127.0.0.1"] });
  try {
    const ivy = await person(insecure);
    const base = `http://parlor.test:${server.port}`;
    await ivy.page.goto(base + "/");
    assert.equal(await ivy.page.evaluate(() => Boolean(window.isSecureContext && crypto.subtle)), false);
    assert.equal(await ivy.page.isDisabled('input[name="e2e"][value="link"]'), true);
    assert.equal(await ivy.page.isDisabled('input[name="e2e"][value="passphrase"]'), true);
    assert.match(await ivy.page.textContent("#privacy-error"), /need a secure connection: open Parlor over HTTPS/);

    await arrive(ivy.page, `${base}/chat/${LINK_ROOM}#k=${linkKey}`, "Ivy");
    const placeholder = "encrypted: open Parlor over HTTPS to read it";
    await ivy.page.waitForFunction(
      (p) => [...document.querySelectorAll("#messages .msg[data-id] .body")].every((e) => e.textContent === p),
      placeholder,
    );
    assert.ok((await ids(ivy.page)).length > 0);
    assert.equal(await ivy.page.isDisabled("#text"), true);
    assert.match(await ivy.page.textContent("#composer-note"), /HTTPS/);
    assert.match(await ivy.page.textContent("#e2e-explain"), /HTTPS/);
    await ivy.context.close();
  } finally {
    await insecure.close();
  }
});

/// Waits until the page marks its last message "not sent", with `why` in
/// the composer's note.
async function expectRefusedHere(page, why) {
  await page.waitForSelector("#messages .msg.failed");
  assert.match(await page.textContent("#composer-note"), why);
}

test("a message typed before the room's first joined waits, and leaves the page only as an envelope", async () => {
  const juliet = await person(browser);
  const { tap, release } = await arriveHeld(juliet.page, `${server.url}/chat/${LINK_ROOM}#k=${linkKey}`, "Juliet");
  await say(juliet.page, SECRETS.juliet); // the composer takes it while offline, too
  release();
  await waitForMessage(juliet.page, SECRETS.juliet, 15000);
  const sends = sentOfType(tap, "send_message");
  assert.equal(sends.length, 1, "sent once");
  assert.match(sends[0].text, ENVELOPE);
  neverSent(tap, "juliet");
  const last = (await history(LINK_ROOM)).at(-1);
  assert.equal(await open(linkKey, LINK_ROOM, last.text), SECRETS.juliet, "stored as its envelope");
  stored.push(last.text);
  noScriptErrors(juliet);
  await juliet.context.close();
});

test("typed before joined into an encrypted room without its key, a message is refused in the page", async () => {
  const lima = await person(browser);
  const { tap, release } = await arriveHeld(lima.page, `${server.url}/chat/${LINK_ROOM}`, "Lima");
  await say(lima.page, SECRETS.lima);
  release();
  await expectRefusedHere(lima.page, /does not have its invite link/);
  assert.deepEqual(sentOfType(tap, "send_message"), [], "nothing sent");
  neverSent(tap, "lima:");
  noScriptErrors(lima);
  await lima.context.close();
});

test("a page that holds a key for a room the server calls plain sends nothing readable there, until the key is forgotten", async () => {
  // A room made plain (say, its row changed in the database) that an
  // invite link or this browser's storage says is encrypted.
  const room = "plain-but-keyed";
  await post(server.url, "/create_room", { room });
  const kilo = await person(browser);
  const { tap, release } = await arriveHeld(kilo.page, `${server.url}/chat/${room}#k=${linkKey}`, "Kilo");
  await say(kilo.page, SECRETS.kilo);
  release();
  await expectRefusedHere(kilo.page, /holds an end-to-end key for this room/);
  assert.equal(await kilo.page.isDisabled("#text"), true, "the composer is off");
  assert.equal(await storedKey(kilo.page, room), null, "a plain room's key is not kept");
  assert.deepEqual(sentOfType(tap, "send_message"), [], "nothing sent");

  // Kept in storage (from when the room was encrypted), the same.
  await kilo.page.evaluate(([r, k]) => localStorage.setItem(`parlor:key:${r}`, k), [room, linkKey]);
  await kilo.page.reload();
  await connected(kilo.page);
  assert.equal(await kilo.page.isDisabled("#text"), true, "still off after a reload");
  assert.match(await kilo.page.textContent("#composer-note"), /holds an end-to-end key for this room/);
  assert.deepEqual(sentOfType(tap, "send_message"), [], "nothing sent");
  neverSent(tap, "kilo:");

  // The way out (a wiped server whose room name was used again looks the
  // same): forgetting the key, which the person is asked to confirm. Here
  // the invite link brings the key again too, so both are forgotten.
  await kilo.page.goto("about:blank");
  await kilo.page.goto(`${server.url}/chat/${room}#k=${linkKey}`);
  await connected(kilo.page);
  assert.equal(await kilo.page.isVisible("#e2e-panel.warning"), true, "the room says why");
  assert.match(await kilo.page.textContent("#e2e-explain"), /would be readable by the server/);
  assert.equal(await kilo.page.isVisible("#e2e-badge"), false, "not shown as encrypted");
  assert.equal(await kilo.page.isVisible("#key-forget-confirm"), false);
  await kilo.page.click("#key-forget");
  assert.equal(await kilo.page.isVisible("#key-forget-confirm"), true, "asked first");
  assert.match(await kilo.page.textContent("#key-forget-why"), /not end-to-end encrypted/);
  await kilo.page.click("#key-forget-no");
  assert.equal(await kilo.page.isVisible("#key-forget-confirm"), false);
  assert.equal(await kilo.page.isDisabled("#text"), true, "declined: still off");
  assert.equal(await storedKey(kilo.page, room), linkKey, "declined: the key is kept");
  await kilo.page.click("#key-forget");
  await kilo.page.screenshot({ path: join(SHOTS, "e2e-forget-key.png") });
  await kilo.page.click("#key-forget-yes");
  assert.equal(await kilo.page.isDisabled("#text"), false, "forgotten: the composer is on");
  assert.equal(await storedKey(kilo.page, room), null, "forgotten: the key is gone");
  assert.equal(await kilo.page.isVisible("#e2e-panel"), false);
  assert.match(await kilo.page.textContent("#composer-note"), /Key forgotten/);
  // Joining again (the link's key is gone from the page too) changes nothing.
  tap.close();
  await kilo.page.waitForFunction(() => document.getElementById("status").classList.contains("offline"));
  await connected(kilo.page);
  assert.equal(await kilo.page.isDisabled("#text"), false, "still forgotten after joining again");
  await say(kilo.page, "in the open, knowingly");
  await waitForMessage(kilo.page, "in the open, knowingly");
  assert.equal((await history(room)).at(-1).text, "in the open, knowingly");
  await kilo.page.reload();
  await connected(kilo.page);
  assert.equal(await kilo.page.isDisabled("#text"), false, "still forgotten after a reload");
  noScriptErrors(kilo);
  await kilo.context.close();
});

test("a passphrase is never used with fewer rounds or a shorter salt than Parlor's, whatever the server says", async () => {
  const { page, context } = await person(browser);
  await page.goto(server.url + "/");
  const outcomes = await page.evaluate(async () => {
    const e2e = await import("/static/e2e.js");
    const salt16 = "AAECAwQFBgcICQoLDA0ODw"; // 16 bytes
    const salt8 = "AAECAwQFBgc"; // 8 bytes
    const attempt = (encryption) =>
      e2e.keyFromPassphrase("correct horse", encryption).then(
        (key) => (e2e.isKey(key) ? "derived" : "no key"),
        (error) => error.message,
      );
    return Promise.all([
      attempt({ iterations: 600000, salt: salt16 }),
      attempt({ iterations: 1000, salt: salt16 }),
      attempt({ iterations: 600000, salt: salt8 }),
      attempt({ salt: salt16 }),
    ]);
  });
  assert.equal(outcomes[0], "derived", "Parlor's own parameters work");
  for (const refused of outcomes.slice(1)) assert.match(refused, /weaker passphrase protection/);
  await context.close();
});

// ---- what the server kept ----------------------------------------------------------

test("the database and the server's log hold the envelopes and none of the plaintext", async () => {
  // SQLite's files as they are: the database and, while the server runs,
  // its write-ahead log, which also holds earlier versions of pages.
  const files = () => [server.db, `${server.db}-wal`, `${server.db}-shm`].filter(existsSync).map((f) => readFileSync(f));
  const running = files();
  assert.ok(existsSync(`${server.db}-wal`) && running[1].length > 0, "the write-ahead log is read while it holds pages");
  // Then stopped, so everything is written and the log is whole.
  await server.stop();
  const database = Buffer.concat([...running, ...files()]);
  const log = Buffer.from(server.log.join("\n"));
  assert.ok(server.log.some((line) => line.includes("listening on")), "the log was captured");

  // The check can fail: what the server should have is found.
  assert.ok(database.includes(LINK_ROOM), "the room is in the database");
  assert.ok(stored.length >= 10);
  // (A long one spills over SQLite's pages, so each is looked for by its start.)
  for (const envelope of stored) {
    assert.ok(database.includes(envelope.slice(0, 100)), `envelope ${envelope.slice(0, 24)}… stored`);
  }
  assert.ok(database.includes("plain words"), "a plain room's text is stored as it is");

  const secrets = [...Object.values(SECRETS), PASSPHRASE, linkKey];
  // Each secret also by a distinctive part of it, in case of escaping.
  const words = ["eagle lands", "blue folder", "onerror=window.pwned", "outside the browser", "must be refused", "confirmation was lost", "only those with", "opened the room", "before anyone could check"];
  for (const secret of [...secrets, ...words]) {
    assert.ok(!database.includes(secret), `the database holds ${JSON.stringify(secret)}`);
    assert.ok(!log.includes(secret), `the server's log holds ${JSON.stringify(secret)}`);
  }
});
