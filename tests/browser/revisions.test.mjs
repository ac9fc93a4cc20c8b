// Changing what was said, on the room page: editing and deleting one's own
// messages, replying to and reacting to anyone's (static/room-actions.js,
// static/room-parts.js), driven in headless Chromium against the real server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";
import {
  SHOTS,
  bodies,
  connected,
  enterRoom,
  neverSent,
  person,
  post,
  say,
  sentOfType,
  serverAndBrowser,
  startServer,
  waitForMessage,
  wiretap,
} from "./harness.mjs";

const ENVELOPE = /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22,}$/;

let server;
let browser;

serverAndBrowser({ use: (s, b) => ([server, browser] = [s, b]), current: () => [server, browser] });

// ---- helpers -------------------------------------------------------------------

/// The id of the confirmed message whose text is exactly `text` (waiting for it).
async function idOf(page, text) {
  await waitForMessage(page, text);
  return page.$eval(
    "#messages",
    (list, t) => Number([...list.querySelectorAll(".msg[data-id]")].find((m) => m.querySelector(":scope > .body").textContent === t).dataset.id),
    text,
  );
}

const msg = (page, id) => page.locator(`#messages .msg[data-id="${id}"]`);

/// Hovers the message (its actions show) and clicks one of them.
async function act(page, id, action) {
  await msg(page, id).hover();
  await msg(page, id).locator(`[data-action="${action}"]`).click();
}

const bodyOf = (page, id) => page.textContent(`#messages .msg[data-id="${id}"] > .body`);

const waitForBody = (page, id, text, timeout = 10000) =>
  page.waitForFunction(
    ([i, t]) => document.querySelector(`#messages .msg[data-id="${i}"] > .body`)?.textContent === t,
    [id, text],
    { timeout },
  );

/// The quote above message `id`: [author, snippet].
const quoteOf = (page, id) =>
  page.$eval(`#messages .msg[data-id="${id}"] > .quote`, (q) => [q.querySelector(".quote-who").textContent, q.querySelector(".quote-text").textContent]);

const waitForQuote = (page, id, who, text, timeout = 10000) =>
  page.waitForFunction(
    ([i, w, t]) => {
      const q = document.querySelector(`#messages .msg[data-id="${i}"] > .quote`);
      return q && q.querySelector(".quote-who").textContent === w && q.querySelector(".quote-text").textContent === t;
    },
    [id, who, text],
    { timeout },
  );

/// The reaction chips under message `id`: [[emoji, count, pressed, title]].
const chipsOf = (page, id) =>
  page.$$eval(`#messages .msg[data-id="${id}"] .reactions .chip`, (chips) =>
    chips.map((c) => [c.dataset.emoji, Number(c.querySelector(".chip-count").textContent), c.getAttribute("aria-pressed") === "true", c.title]),
  );

const waitForChips = (page, id, expected, timeout = 10000) =>
  page
    .waitForFunction(
      ([i, want]) =>
        JSON.stringify(
          [...document.querySelectorAll(`#messages .msg[data-id="${i}"] .reactions .chip`)].map((c) => [
            c.dataset.emoji,
            Number(c.querySelector(".chip-count").textContent),
          ]),
        ) === JSON.stringify(want),
      [id, expected],
      { timeout },
    )
    .catch(() => {});

/// A WebSocket client outside any browser, as a script would be.
async function rawClient(base, room, name) {
  const socket = new WebSocket(base.replace(/^http/, "ws") + "/ws", { origin: base });
  const frames = [];
  socket.on("message", (data) => frames.push(JSON.parse(String(data))));
  await once(socket, "open");
  const next = async (wanted, timeout = 10000) => {
    const deadline = Date.now() + timeout;
    for (;;) {
      const at = frames.findIndex(wanted);
      if (at >= 0) return frames.splice(at, 1)[0];
      assert.ok(Date.now() < deadline, `no such frame; got ${JSON.stringify(frames)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  const send = (frame) => socket.send(JSON.stringify(frame));
  send({ type: "join_room", room, name });
  const joined = await next((f) => f.type === "joined");
  return { socket, joined, next, send, frames };
}

// ---- editing ---------------------------------------------------------------------

test("editing one's own message: both pages see the new text, formatted, marked (edited); a reload too; ArrowUp edits the last", async () => {
  const alice = await person(browser);
  const bob = await person(browser);
  await enterRoom(alice.page, server.url, "Alice", "edits");
  await enterRoom(bob.page, server.url, "Bob", "edits");
  await say(alice.page, "helo wrld");
  const first = await idOf(alice.page, "helo wrld");
  await say(bob.page, "morning");
  const bobs = await idOf(alice.page, "morning");

  // Someone else's message offers React and Reply, never Edit or Delete.
  await msg(alice.page, bobs).hover();
  assert.equal(await msg(alice.page, bobs).locator('[data-action="react"]').isVisible(), true);
  assert.equal(await msg(alice.page, bobs).locator('[data-action="reply"]').isVisible(), true);
  assert.equal(await msg(alice.page, bobs).locator('[data-action="edit"], [data-action="delete"]').count(), 0);
  assert.equal(await msg(bob.page, first).locator('[data-action="edit"], [data-action="delete"]').count(), 0);
  // The actions are labelled for screen readers.
  assert.equal(await msg(alice.page, first).locator('[data-action="edit"]').getAttribute("aria-label"), "Edit your message");

  await act(alice.page, first, "edit");
  const box = msg(alice.page, first).locator(".editor textarea");
  assert.equal(await box.inputValue(), "helo wrld", "the editor holds the text as it is");
  assert.equal(await box.evaluate((e) => e === document.activeElement), true, "and has the focus");
  await box.fill("hello **world**");
  await box.press("Enter");
  for (const { page } of [alice, bob]) {
    await waitForBody(page, first, "hello world");
    assert.equal(await msg(page, first).locator(".body strong").textContent(), "world", "formatted like any message");
    assert.equal(await msg(page, first).locator(".edited").textContent(), "(edited)");
    const title = await msg(page, first).locator(".edited").getAttribute("title");
    assert.match(title, new RegExp(`^Edited .*${new Date().getFullYear()}`), `the edit's time in full: ${title}`);
  }
  assert.equal(await msg(alice.page, first).locator(".editor").count(), 0, "the editor is gone");
  assert.equal(await msg(bob.page, bobs).locator(".edited").count(), 0, "only the edited message is marked");

  // The history from the server has it edited.
  await alice.page.reload();
  await connected(alice.page);
  await waitForBody(alice.page, first, "hello world");
  assert.equal(await msg(alice.page, first).locator(".edited").count(), 1, "still marked after a reload");
  assert.deepEqual(await bodies(alice.page), ["hello world", "morning"]);

  // ArrowUp in the empty composer edits one's last message; Escape leaves it as it was.
  await say(alice.page, "see you at 10");
  const last = await idOf(alice.page, "see you at 10");
  await alice.page.focus("#text");
  await alice.page.keyboard.press("ArrowUp");
  const lastBox = msg(alice.page, last).locator(".editor textarea");
  await lastBox.waitFor();
  assert.equal(await lastBox.inputValue(), "see you at 10");
  await lastBox.press("Escape");
  assert.equal(await msg(alice.page, last).locator(".editor").count(), 0);
  assert.equal(await bodyOf(alice.page, last), "see you at 10");
  assert.equal(await alice.page.evaluate(() => document.activeElement.id), "text", "back in the composer");
  // Not while something is typed: ArrowUp then moves in the text.
  await alice.page.fill("#text", "draft");
  await alice.page.keyboard.press("ArrowUp");
  assert.equal(await alice.page.locator("#messages .editor").count(), 0);
  await alice.page.fill("#text", "");
  await alice.page.keyboard.press("ArrowUp");
  await lastBox.fill("see you at 11, @Bob");
  await lastBox.press("Shift+Enter");
  await lastBox.pressSequentially("(moved)");
  await lastBox.press("Enter");
  // A mention added by an edit marks the message for the one mentioned.
  await waitForBody(bob.page, last, "see you at 11, @Bob\n(moved)");
  await bob.page.waitForSelector(`#messages .msg[data-id="${last}"].mentions-me`);
  assert.equal(await msg(bob.page, last).locator(".mention.me").textContent(), "@Bob");
  assert.equal(await msg(bob.page, last).locator(".edited").count(), 1);
  assert.deepEqual(alice.page.dialogs, []);
  await alice.context.close();
  await bob.context.close();
});

// ---- deleting --------------------------------------------------------------------

test("deleting one's own message asks in the page, then it is gone for everyone; others' edits and deletes are refused", async () => {
  const alice = await person(browser);
  const bob = await person(browser);
  await enterRoom(alice.page, server.url, "Alice", "deletes");
  await enterRoom(bob.page, server.url, "Bob", "deletes");
  await say(alice.page, "oops, wrong room");
  await say(alice.page, "keep this one");
  const oops = await idOf(bob.page, "oops, wrong room");
  const keep = await idOf(bob.page, "keep this one");

  await act(alice.page, oops, "delete");
  const confirm = msg(alice.page, oops).locator(".confirm");
  assert.equal(await confirm.isVisible(), true, "an in-page confirmation");
  assert.match(await confirm.textContent(), /Delete this message\?/);
  assert.deepEqual(alice.page.dialogs, [], "no browser dialog");
  await confirm.locator('[data-action="cancel-delete"]').click();
  assert.equal(await confirm.count(), 0);
  assert.deepEqual(await bodies(alice.page), ["oops, wrong room", "keep this one"], "Cancel keeps it");
  // Escape cancels too.
  await act(alice.page, oops, "delete");
  await alice.page.keyboard.press("Escape");
  assert.equal(await confirm.count(), 0);

  await act(alice.page, oops, "delete");
  await confirm.locator('[data-action="confirm-delete"]').click();
  for (const { page } of [alice, bob]) {
    await page.waitForFunction((i) => !document.querySelector(`#messages .msg[data-id="${i}"]`), oops);
    assert.deepEqual(await bodies(page), ["keep this one"]);
  }
  assert.deepEqual(alice.page.dialogs, []);

  // A script that edits or deletes someone else's message is refused, and
  // the pages see nothing of it.
  const mallory = await rawClient(server.url, "deletes", "Mallory");
  mallory.send({ type: "edit_message", room: "deletes", id: keep, text: "pwned" });
  assert.equal((await mallory.next((f) => f.type === "error")).code, "not_yours");
  mallory.send({ type: "delete_message", room: "deletes", id: keep });
  assert.equal((await mallory.next((f) => f.type === "error")).code, "not_yours");
  mallory.send({ type: "edit_message", room: "deletes", id: oops, text: "too late" });
  assert.equal((await mallory.next((f) => f.type === "error")).code, "unknown_message");
  mallory.socket.close();
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (const { page } of [alice, bob]) {
    assert.deepEqual(await bodies(page), ["keep this one"]);
    assert.equal(await msg(page, keep).locator(".edited").count(), 0);
  }

  // A name is no proof: a new browser under Alice's name (once she left) is
  // offered Edit on "her" messages, but the server says no, and the page
  // says so in a short note, the editor still there to cancel.
  await alice.context.close();
  const other = await person(browser);
  await enterRoom(other.page, server.url, "Alice", "deletes");
  await waitForMessage(other.page, "keep this one");
  await act(other.page, keep, "edit");
  const box = msg(other.page, keep).locator(".editor textarea");
  await box.fill("not mine to change");
  await box.press("Enter");
  await other.page.waitForFunction(() => document.getElementById("composer-note").textContent.includes("isn't yours"));
  assert.equal(await box.isEnabled(), true, "the editor can be used again");
  await box.press("Escape");
  assert.equal(await bodyOf(other.page, keep), "keep this one");
  await act(other.page, keep, "delete");
  await msg(other.page, keep).locator('[data-action="confirm-delete"]').click();
  await other.page.waitForFunction(() => document.getElementById("composer-note").textContent.includes("isn't yours"));
  assert.equal(await msg(other.page, keep).locator(".confirm").count(), 0);
  assert.deepEqual(await bodies(bob.page), ["keep this one"]);
  await other.context.close();
  await bob.context.close();
});

// ---- replies ---------------------------------------------------------------------

test("replies quote their original on every page; a quote of an unloaded message loads history until it shows it", async () => {
  const room = "replies";
  const OLD = "The very first question in this room, long enough that its quote has to be cut short somewhere after a hundred characters.";
  await post(server.url, "/create_room", { room });
  const original = await post(server.url, "/store_message", { room, text: OLD });
  for (let i = 1; i <= 64; i++) await post(server.url, "/store_message", { room, text: `filler ${i}` });

  const alice = await person(browser);
  const bob = await person(browser);
  await enterRoom(alice.page, server.url, "Alice", room);
  await enterRoom(bob.page, server.url, "Bob", room);
  assert.equal(await alice.page.locator(`#messages .msg[data-id="${original.id}"]`).count(), 0, "the original is not loaded");

  // Reply: the bar above the composer says to what; × drops it, Escape too.
  const filler = await idOf(alice.page, "filler 64");
  await act(alice.page, filler, "reply");
  assert.equal(await alice.page.isVisible("#reply-bar"), true);
  assert.equal(await alice.page.textContent("#reply-bar .reply-label"), "Replying to bot: filler 64");
  assert.equal(await alice.page.evaluate(() => document.activeElement.id), "text", "the composer has the focus");
  await alice.page.click("#reply-bar .reply-cancel");
  assert.equal(await alice.page.isVisible("#reply-bar"), false);
  await act(alice.page, filler, "reply");
  await alice.page.keyboard.press("Escape");
  assert.equal(await alice.page.isVisible("#reply-bar"), false);
  await act(alice.page, filler, "reply");
  await say(alice.page, "agreed with that");
  assert.equal(await alice.page.isVisible("#reply-bar"), false, "sent: the reply is done");
  const answer = await idOf(bob.page, "agreed with that");
  for (const { page } of [alice, bob]) {
    await waitForQuote(page, answer, "bot", "filler 64");
    assert.equal(await bodyOf(page, answer), "agreed with that", "the quote is not part of the text");
  }

  // A reply to a message this page has not loaded (from a script): the quote
  // says so; clicking it loads older history until the original is there.
  const carl = await rawClient(server.url, room, "Carl");
  carl.send({ type: "send_message", room, text: "about that first question…", nonce: "c-1", reply_to: original.id });
  const carls = (await carl.next((f) => f.type === "message" && f.nonce === "c-1")).id;
  await waitForMessage(bob.page, "about that first question…");
  assert.deepEqual(await quoteOf(bob.page, carls), ["", "Original message not loaded"]);
  await msg(bob.page, carls).locator(".quote").click();
  const target = msg(bob.page, original.id);
  await target.waitFor({ timeout: 10000 });
  await bob.page.waitForSelector(`#messages .msg[data-id="${original.id}"].flash`);
  assert.equal(await bodyOf(bob.page, original.id), OLD);
  const inView = await target.evaluate((el) => {
    const box = el.getBoundingClientRect();
    const list = document.getElementById("messages").getBoundingClientRect();
    return box.top >= list.top - 1 && box.bottom <= list.bottom + 1;
  });
  assert.ok(inView, "the original is scrolled into view");
  const [who, snippet] = await quoteOf(bob.page, carls);
  assert.equal(who, "bot");
  assert.equal(snippet.length, 100);
  assert.ok(snippet.endsWith("…") && OLD.startsWith(snippet.slice(0, -1)), `a cut snippet: ${snippet}`);
  // A loaded original is a scroll away.
  await bob.page.$eval("#messages", (m) => m.scrollTo(0, m.scrollHeight));
  await msg(bob.page, answer).locator(".quote").click();
  await bob.page.waitForSelector(`#messages .msg[data-id="${filler}"].flash`);

  // Deleting an original: its replies say so.
  await say(alice.page, "a thought I will take back");
  const thought = await idOf(bob.page, "a thought I will take back");
  await act(bob.page, thought, "reply");
  await say(bob.page, "interesting thought");
  const reply = await idOf(alice.page, "interesting thought");
  await waitForQuote(alice.page, reply, "Alice", "a thought I will take back");
  await act(alice.page, thought, "delete");
  await msg(alice.page, thought).locator('[data-action="confirm-delete"]').click();
  for (const { page } of [alice, bob]) await waitForQuote(page, reply, "", "Original message deleted");

  // After a reload the replies still quote (the history carries reply_to).
  await bob.page.reload();
  await connected(bob.page);
  await waitForMessage(bob.page, "interesting thought");
  await waitForQuote(bob.page, answer, "bot", "filler 64");
  await waitForQuote(bob.page, reply, "", "Original message deleted");
  await waitForQuote(bob.page, carls, "", "Original message not loaded");
  carl.socket.close();
  await alice.context.close();
  await bob.context.close();
});

// ---- reactions ---------------------------------------------------------------------

test("reactions: chips with counts, one's own highlighted, names on hover, toggled by a click; live on other pages and after a reload", async () => {
  const alice = await person(browser);
  const bob = await person(browser);
  const carol = await person(browser);
  await enterRoom(alice.page, server.url, "Alice", "reacts");
  await enterRoom(bob.page, server.url, "Bob", "reacts");
  await enterRoom(carol.page, server.url, "Carol", "reacts");
  await say(alice.page, "lunch at noon?");
  const lunch = await idOf(carol.page, "lunch at noon?");

  await act(bob.page, lunch, "react");
  const picker = msg(bob.page, lunch).locator(".emoji-picker");
  assert.deepEqual(
    await picker.locator("button").evaluateAll((bs) => bs.map((b) => b.textContent)),
    ["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀"],
  );
  assert.equal(await picker.locator("button").first().getAttribute("aria-label"), "React with thumbs up");
  await picker.locator('[data-emoji="👍"]').click();
  assert.equal(await picker.count(), 0, "the picker closes");
  await waitForChips(carol.page, lunch, [["👍", 1]]);

  for (const emoji of ["👍", "❤️"]) {
    await act(alice.page, lunch, "react");
    await msg(alice.page, lunch).locator(`.emoji-picker [data-emoji="${emoji}"]`).click();
  }
  for (const { page } of [alice, bob, carol]) await waitForChips(page, lunch, [["👍", 2], ["❤️", 1]]);
  const seen = await chipsOf(carol.page, lunch);
  assert.deepEqual(
    seen.map(([emoji, count, pressed]) => [emoji, count, pressed]),
    [["👍", 2, false], ["❤️", 1, false]],
    "Carol reacted with neither",
  );
  assert.equal(seen[0][3], "Bob, Alice reacted with 👍", "the names, a hover away");
  assert.deepEqual((await chipsOf(alice.page, lunch)).map((c) => c[2]), [true, true], "Alice's own are highlighted");
  assert.deepEqual((await chipsOf(bob.page, lunch)).map((c) => c[2]), [true, false]);

  // Carol adds hers by clicking a chip; Alice takes hers back the same way.
  await msg(carol.page, lunch).locator('.chip[data-emoji="❤️"]').click();
  await msg(alice.page, lunch).locator('.chip[data-emoji="👍"]').click();
  for (const { page } of [alice, bob, carol]) await waitForChips(page, lunch, [["👍", 1], ["❤️", 2]]);
  assert.deepEqual(await chipsOf(alice.page, lunch), [
    ["👍", 1, false, "Bob reacted with 👍"],
    ["❤️", 2, true, "Alice, Carol reacted with ❤️"],
  ]);
  // The last one taken back takes the chip with it.
  await msg(bob.page, lunch).locator('.chip[data-emoji="👍"]').click();
  await waitForChips(carol.page, lunch, [["❤️", 2]]);

  // After a reload the chips come from the server.
  await carol.page.reload();
  await connected(carol.page);
  await waitForChips(carol.page, lunch, [["❤️", 2]]);
  assert.deepEqual(await chipsOf(carol.page, lunch), [["❤️", 2, true, "Alice, Carol reacted with ❤️"]]);

  // The actions can be reached by keyboard: focus shows them.
  await carol.page.mouse.move(0, 0);
  const react = msg(carol.page, lunch).locator('[data-action="react"]');
  assert.equal(await react.evaluate((b) => getComputedStyle(b.parentElement).opacity), "0", "hidden until needed");
  await react.focus();
  assert.equal(await react.evaluate((b) => getComputedStyle(b.parentElement).opacity), "1", "shown on focus");
  await carol.page.keyboard.press("Enter");
  await msg(carol.page, lunch).locator(".emoji-picker button").first().waitFor();
  assert.equal(await carol.page.evaluate(() => document.activeElement.textContent), "👍", "the picker has the focus");
  await carol.page.keyboard.press("Escape");
  assert.equal(await msg(carol.page, lunch).locator(".emoji-picker").count(), 0);
  assert.equal(await carol.page.evaluate(() => document.activeElement.dataset.action), "react");
  for (const { context } of [alice, bob, carol]) await context.close();
});

// ---- an encrypted room ---------------------------------------------------------------

test("in an end-to-end encrypted room edits and replies work, and the server only ever has envelopes", async () => {
  // A server of its own, to read its database once stopped.
  const own = await startServer();
  const room = "sealed-edits";
  try {
    const alice = await person(browser);
    const tap = await wiretap(alice.page);
    await alice.page.goto(own.url + "/");
    await alice.page.fill("#name", "Alice");
    await alice.page.fill("#room", room);
    await alice.page.check('input[name="e2e"][value="link"]');
    await alice.page.click("#go");
    await alice.page.waitForURL((url) => url.pathname === `/chat/${room}`);
    await connected(alice.page);
    const key = await alice.page.evaluate((r) => localStorage.getItem(`parlor:key:${r}`), room);
    assert.match(key ?? "", /^[A-Za-z0-9_-]{43}$/);

    const bob = await person(browser);
    await bob.page.goto(`${own.url}/chat/${room}#k=${key}`);
    await bob.page.waitForSelector("#name-dialog[open]");
    await bob.page.fill("#name-input", "Bob");
    await bob.page.click("#name-form button[type=submit]");
    await connected(bob.page);

    await say(alice.page, "meet at the north gate");
    const plan = await idOf(bob.page, "meet at the north gate");
    await act(bob.page, plan, "reply");
    assert.equal(await bob.page.textContent("#reply-bar .reply-label"), "Replying to Alice: meet at the north gate");
    await say(bob.page, "which one is north?");
    const question = await idOf(alice.page, "which one is north?");
    for (const { page } of [alice, bob]) await waitForQuote(page, question, "Alice", "meet at the north gate");

    await act(alice.page, plan, "edit");
    const box = msg(alice.page, plan).locator(".editor textarea");
    assert.equal(await box.inputValue(), "meet at the north gate", "the decrypted text to edit");
    await box.fill("meet at the *south* gate instead");
    await box.press("Enter");
    for (const { page } of [alice, bob]) {
      await waitForBody(page, plan, "meet at the south gate instead");
      assert.equal(await msg(page, plan).locator(".body em").textContent(), "south");
      assert.equal(await msg(page, plan).locator(".edited").count(), 1);
      // The quote follows the edit.
      await waitForQuote(page, question, "Alice", "meet at the south gate instead");
    }
    // Reactions work there too (their emoji are not encrypted).
    await act(bob.page, plan, "react");
    await msg(bob.page, plan).locator('.emoji-picker [data-emoji="👀"]').click();
    await waitForChips(alice.page, plan, [["👀", 1]]);

    // What went over the wire, and what the server keeps, is an envelope.
    const edits = sentOfType(tap, "edit_message");
    assert.equal(edits.length, 1);
    assert.equal(edits[0].id, plan);
    assert.match(edits[0].text, ENVELOPE);
    neverSent(tap, "south", "north");
    const answer = await (await fetch(`${own.url}/api/rooms/${room}/messages`)).json();
    const stored = answer.messages.find((m) => m.id === plan);
    assert.equal(stored.text, edits[0].text, "the server keeps the edit's envelope");
    assert.ok(stored.edited_at, "with the time of the edit");
    assert.equal(answer.messages.find((m) => m.id === question).reply_to, plan);

    // A reload decrypts the edited text and the quote again.
    await bob.page.reload();
    await connected(bob.page);
    await waitForBody(bob.page, plan, "meet at the south gate instead");
    await waitForQuote(bob.page, question, "Alice", "meet at the south gate instead");
    assert.equal(await msg(bob.page, plan).locator(".edited").count(), 1);
    await alice.context.close();
    await bob.context.close();

    await own.stop();
    const files = [own.db, `${own.db}-wal`].filter(existsSync);
    const database = Buffer.concat(files.map((file) => readFileSync(file)));
    assert.ok(database.includes(stored.text.slice(0, 60)), "the envelope is in the database");
    for (const word of ["north gate", "south", "which one is"]) assert.ok(!database.includes(word), `the database holds ${word}`);
  } finally {
    await own.stop();
  }
});

// ---- screenshots ---------------------------------------------------------------------

test("screenshots: a reply, reactions and an edited message at desktop and phone width", async () => {
  const room = "revisions";
  const alice = await person(browser);
  const bob = await person(browser, { width: 390, height: 844 });
  await enterRoom(alice.page, server.url, "Alice", room);
  await enterRoom(bob.page, server.url, "Bob", room);
  await say(alice.page, "Release notes for 2.4 are up: https://example.com/notes — please have a look before Friday's demo.");
  const notes = await idOf(bob.page, "Release notes for 2.4 are up: https://example.com/notes — please have a look before Friday's demo.");
  await msg(bob.page, notes).locator(".more").click();
  await msg(bob.page, notes).locator('[data-action="reply"]').click();
  await say(bob.page, "Looks great! One typo in the **install** section.");
  const reply = await idOf(alice.page, "Looks great! One typo in the install section.");
  await act(alice.page, notes, "edit");
  await msg(alice.page, notes).locator(".editor textarea").fill("Release notes for 2.4 are up: https://example.com/notes (typo fixed) — please look before Friday's demo.");
  await msg(alice.page, notes).locator(".editor textarea").press("Enter");
  await waitForBody(bob.page, notes, "Release notes for 2.4 are up: https://example.com/notes (typo fixed) — please look before Friday's demo.");
  for (const [page, emoji] of [[alice.page, "🎉"], [alice.page, "🙏"]]) {
    await act(page, reply, "react");
    await msg(page, reply).locator(`.emoji-picker [data-emoji="${emoji}"]`).click();
  }
  await msg(bob.page, reply).locator('.chip[data-emoji="🎉"]').click();
  await waitForChips(alice.page, reply, [["🎉", 2], ["🙏", 1]]);
  await waitForChips(bob.page, reply, [["🎉", 2], ["🙏", 1]]);
  await say(bob.page, "Thanks!");
  await waitForMessage(alice.page, "Thanks!");
  // Bob is replying to the edited message, with its actions shown.
  await msg(bob.page, notes).locator(".more").click();
  await msg(bob.page, notes).locator('[data-action="reply"]').click();
  // On a phone a tap on a message shows its actions (as its "⋯" does).
  assert.equal(await msg(bob.page, reply).locator(".msg-actions").isVisible(), false);
  await msg(bob.page, reply).locator(".body").click({ position: { x: 4, y: 4 } });
  assert.equal(await msg(bob.page, reply).locator(".msg-actions").isVisible(), true);
  assert.equal(await msg(bob.page, reply).locator(".more").getAttribute("aria-expanded"), "true");
  await alice.page.mouse.move(0, 0);
  await msg(alice.page, reply).hover();
  await alice.page.screenshot({ path: join(SHOTS, "revisions-desktop.png") });
  await bob.page.screenshot({ path: join(SHOTS, "revisions-phone.png") });

  // Nothing wider than the phone.
  const widths = await bob.page.evaluate(() => ({
    page: document.documentElement.scrollWidth,
    list: document.getElementById("messages").scrollWidth - document.getElementById("messages").clientWidth,
  }));
  assert.ok(widths.page <= 390, `the page fits the phone (${widths.page}px)`);
  assert.ok(widths.list <= 0, `no sideways scrolling in the list (${widths.list}px)`);
  await act(alice.page, reply, "react");
  await alice.page.screenshot({ path: join(SHOTS, "revisions-desktop-picker.png") });
  await alice.context.close();
  await bob.context.close();
});
