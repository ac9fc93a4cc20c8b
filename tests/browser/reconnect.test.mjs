// The connection's life: the server goes away while people chat.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ADMIN_TOKEN,
  arriveHeld,
  bodies,
  connected,
  deliverHeld,
  enterRoom,
  eventually,
  heldFrame,
  holdFrames,
  ids,
  person,
  post,
  reconnectNow,
  say,
  sentOfType,
  serverAndBrowser,
  startServer,
  waitForMessage,
  wiretap,
} from "./harness.mjs";

let server;
let browser;

serverAndBrowser({ use: (s, b) => ([server, browser] = [s, b]), current: () => [server, browser] });

test("after a server restart both pages reconnect on their own and have every message once", async () => {
  const alice = await person(browser);
  const bob = await person(browser);
  await enterRoom(alice.page, server.url, "Alice", "resilient");
  await enterRoom(bob.page, server.url, "Bob", "resilient");
  await say(alice.page, "before 1");
  await waitForMessage(bob.page, "before 1");
  await say(bob.page, "before 2");
  await waitForMessage(alice.page, "before 2");

  const { port, db } = server;
  await server.stop();
  for (const { page } of [alice, bob]) {
    await page.waitForFunction(() => document.getElementById("status").classList.contains("offline"));
    assert.equal(await page.isDisabled("#text"), false, "the composer stays usable while disconnected");
    assert.equal(await page.isVisible("#reconnect-now"), true, "with a way to try again at once");
  }
  // Written while away: shown as waiting, sent once the page is back.
  await say(alice.page, "typed while away");
  await alice.page.waitForSelector("#messages .msg.pending");

  // Meanwhile the room goes on elsewhere (the same log, another address the
  // pages do not know): more than one join's worth of history piles up.
  const elsewhere = await startServer({ db });
  for (let i = 1; i <= 60; i++) {
    await post(elsewhere.url, "/store_message", { room: "resilient", user: "bot", text: `while away ${i}` });
  }
  await elsewhere.stop();

  server = await startServer({ port, db });
  // Alice does not wait for the next attempt.
  await reconnectNow(alice.page);
  await connected(bob.page, 60000);
  for (const { page } of [alice, bob]) {
    await waitForMessage(page, "typed while away");
    const copies = await page.$$eval("#messages .msg[data-id] .body", (els) =>
      els.filter((e) => e.textContent === "typed while away").length,
    );
    assert.equal(copies, 1, "sent once, shown once");
  }
  assert.equal(await alice.page.locator("#messages .msg.pending").count(), 0);
  await say(alice.page, "after 1");
  await waitForMessage(bob.page, "after 1");
  await say(bob.page, "after 2");

  const away = Array.from({ length: 60 }, (_, i) => `while away ${i + 1}`);
  // What Alice wrote while away went out when she was back: after the
  // messages posted meanwhile.
  const expected = ["before 1", "before 2", ...away, "typed while away", "after 1", "after 2"];
  for (const { page } of [alice, bob]) {
    await waitForMessage(page, "after 2");
    // The gap beyond the 50 sent with `joined` is filled from history.
    await page.waitForFunction((n) => document.querySelectorAll("#messages .msg[data-id]").length === n, expected.length);
    assert.deepEqual(await bodies(page), expected);
    assert.deepEqual(await ids(page), Array.from({ length: expected.length }, (_, i) => i + 1), "every message once");
    assert.equal(await page.locator("#messages .msg.pending").count(), 0);
  }
  await alice.context.close();
  await bob.context.close();
});

test("a message in flight when the connection drops is neither lost nor doubled", async () => {
  const { context, page } = await person(browser);
  await enterRoom(page, server.url, "Lee", "pending");
  await say(page, "confirmed");
  await waitForMessage(page, "confirmed");
  const { port, db } = server;
  // Send and pull the plug at once: the message may or may not have been
  // stored. Either way the page must end with exactly one stored copy.
  await say(page, "in flight");
  await server.stop();
  await page.waitForFunction(() => document.getElementById("status").classList.contains("offline"));
  server = await startServer({ port, db });
  await connected(page, 60000);
  await waitForMessage(page, "in flight", 20000);
  assert.deepEqual(await bodies(page), ["confirmed", "in flight"]);
  assert.equal(await page.locator("#messages .msg.pending").count(), 0);
  const stored = await (await fetch(`${server.url}/api/rooms/pending/messages`)).json();
  assert.deepEqual(
    stored.messages.map((m) => m.text),
    ["in flight", "confirmed"],
    "stored once (newest first)",
  );
  await context.close();
});

test("a message whose confirmation never arrived is resent after a restart and stored once", async () => {
  const { context, page } = await person(browser);
  // Between the page and the server: count the page's sends, and drop the
  // server's confirmations (the sender's copy carries its nonce) while
  // `dropping` holds, so the page is left with a pending message.
  let dropping = true;
  let dropped = 0;
  const tap = await wiretap(page, (text) => {
    if (!dropping || !text.includes('"type":"message"') || !text.includes('"nonce"')) return false;
    dropped += 1;
    return true;
  });
  await enterRoom(page, server.url, "Kim", "unconfirmed");
  await say(page, "only once");
  const stored = async () =>
    (await (await fetch(`${server.url}/api/rooms/unconfirmed/messages`)).json()).messages.map((m) => m.text);
  // Stored, its confirmation dropped: the page still shows it pending.
  await eventually(
    async () => dropped > 0 && (await stored()).length > 0,
    "the message reached the log and its confirmation the route",
  );
  assert.equal(dropped, 1);
  assert.equal(await page.locator("#messages .msg.pending").count(), 1);

  dropping = false;
  const { port, db } = server;
  await server.stop();
  await page.waitForFunction(() => document.getElementById("status").classList.contains("offline"));
  server = await startServer({ port, db });
  await connected(page, 60000);
  await page.waitForFunction(() => document.querySelectorAll("#messages .msg.pending").length === 0, null, {
    timeout: 20000,
  });
  assert.equal(sentOfType(tap, "send_message").length, 2, "the page sent it again after reconnecting");
  assert.deepEqual(await bodies(page), ["only once"]);
  assert.deepEqual(await stored(), ["only once"], "the log holds it once");
  await context.close();
});

test("put out of a room with messages waiting: never sent says so, sent unanswered says it may have arrived until an answer comes", async () => {
  const room = "doomed";
  const stored = async () => (await (await fetch(`${server.url}/api/rooms/${room}/messages`)).json()).messages.map((m) => m.text);
  // Ann's message reaches the server; its confirmation is held from her, and
  // so is the news that the room closed.
  const ann = await person(browser);
  const annHolding = await holdFrames(ann.page, '"sent, unanswered"', '"room_closed"');
  const annHeld = annHolding.held;
  await enterRoom(ann.page, server.url, "Ann", room);
  // Cid's page does not hear that the room closed, so he sends into it; the
  // server's refusal is held from him too.
  const cid = await person(browser);
  const cidHolding = await holdFrames(cid.page, '"room_closed"', '"not_joined"');
  const cidHeld = cidHolding.held;
  await enterRoom(cid.page, server.url, "Cid", room);
  await ann.page.locator("#messages .notice", { hasText: "Cid joined" }).waitFor();
  await say(ann.page, "confirmed");
  await waitForMessage(ann.page, "confirmed");
  annHolding.on = true;
  cidHolding.on = true;
  await say(ann.page, "sent, unanswered");
  await eventually(async () => (await stored()).includes("sent, unanswered"), "the server stored it");
  await heldFrame(annHeld, "sent, unanswered");
  assert.equal(await ann.page.locator("#messages .msg.pending").count(), 1, "Ann's page still waits for it");
  // Bea's page has asked to join, but has not heard back: what she types waits.
  const bea = await person(browser);
  const { tap, held: beaHeld } = await arriveHeld(bea.page, `${server.url}/chat/${room}`, "Bea");
  await say(bea.page, "never left the page");
  await say(bea.page, "nor did this");
  await eventually(async () => (await bea.page.locator("#messages .msg.pending").count()) === 2, "Bea's two wait");

  const closed = await fetch(`${server.url}/admin/rooms/${room}/close`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${ADMIN_TOKEN}` },
    body: "{}",
  });
  assert.equal(closed.status, 200);
  await heldFrame(cidHeld, "room_closed");
  await say(cid.page, "too late");
  await heldFrame(cidHeld, '"command":"send_message"');
  // Each page hears only that the room closed.
  for (const held of [annHeld, beaHeld, cidHeld]) {
    await heldFrame(held, "room_closed");
    deliverHeld(held, "room_closed");
  }

  await ann.page.waitForSelector("#messages .msg.unconfirmed");
  assert.equal(await ann.page.textContent("#messages .msg.unconfirmed time"), "not confirmed");
  assert.equal(await ann.page.locator("#messages .msg.unconfirmed.grouped").count(), 1, "under her message before it");
  assert.ok(await ann.page.isVisible("#messages .msg.unconfirmed time"), "said even there");
  assert.equal(await ann.page.locator("#member-list li").count(), 0, "nobody is with her in the room any more");
  assert.equal(await ann.page.locator("#messages .msg.pending").count(), 0);
  assert.ok(
    await ann.page.locator("#messages .notice", { hasText: "A message you sent was not confirmed before that" }).isVisible(),
    "the room says what that means",
  );
  await cid.page.waitForSelector("#messages .msg.unconfirmed");
  await bea.page.waitForSelector("#messages .msg.failed");
  assert.deepEqual(await bea.page.$$eval("#messages .msg.failed time", (els) => els.map((e) => e.textContent)), ["not sent", "not sent"]);
  assert.equal(await bea.page.locator("#messages .msg.failed.grouped").count(), 1, "one under the other");
  assert.ok(await bea.page.locator("#messages .msg.failed.grouped time").isVisible(), "said there too");
  assert.ok(
    await bea.page.locator("#messages .notice", { hasText: "2 messages you wrote were not sent" }).isVisible(),
    "the room says so",
  );
  assert.equal(await bea.page.locator("#messages .msg.pending").count(), 0);
  assert.deepEqual(sentOfType(tap, "send_message"), [], "Bea's never went out");

  // The answers that were on their way still settle it: Ann's was stored,
  // Cid's refused.
  deliverHeld(annHeld, "sent, unanswered");
  await waitForMessage(ann.page, "sent, unanswered");
  assert.equal(await ann.page.locator("#messages .msg.unconfirmed").count(), 0);
  for (const [, deliver] of cidHeld.splice(0)) deliver(); // its refusal, and any of typing
  await cid.page.waitForSelector("#messages .msg.failed");
  assert.equal(await cid.page.textContent("#messages .msg.failed time"), "not sent");
  assert.equal(await cid.page.locator("#messages .msg.unconfirmed").count(), 0);
  assert.doesNotMatch(await cid.page.textContent("#composer-note"), /not joined|haven't joined/i, "the room already says why");
  assert.deepEqual(await stored(), ["sent, unanswered", "confirmed"], "what each page says is so (newest first)");
  for (const p of [ann, bea, cid]) await p.context.close();
});

test("after a crash the room starts a new epoch and the page reloads its history", async () => {
  const { context, page } = await person(browser);
  await enterRoom(page, server.url, "Ana", "crashy");
  const metric = async (name) => {
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    return Number(metrics.match(new RegExp(`^${name} (\\d+)$`, "m"))?.[1]);
  };
  const acceptedBefore = await metric("parlor_messages_accepted_total");
  await say(page, "one");
  await waitForMessage(page, "one");
  // The log has it before the crash (the server's own metrics say its
  // writer has nothing left; the history API would answer from memory):
  // nothing acknowledged is lost here, but the server cannot prove that,
  // so the epoch changes all the same.
  await eventually(
    async () =>
      (await metric("parlor_messages_accepted_total")) === acceptedBefore + 1 &&
      (await metric("parlor_writer_queue_depth")) === 0,
    "the message reached the log",
  );
  const { port, db } = server;
  await server.kill();
  await page.waitForFunction(() => document.getElementById("status").classList.contains("offline"));
  server = await startServer({ port, db });
  await connected(page, 60000);
  await page.waitForFunction(
    () => [...document.querySelectorAll("#messages .notice")].some((p) => p.textContent.includes("history was reloaded")),
    null,
    { timeout: 20000 },
  );
  assert.deepEqual(await bodies(page), ["one"], "shown once, from the new epoch's history");
  await say(page, "two");
  await waitForMessage(page, "two");
  assert.deepEqual(await ids(page), [1, 2]);
  await context.close();
});
