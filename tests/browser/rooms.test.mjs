// Several rooms in one page, as in Slack or Element: a sidebar of the rooms
// this browser is in, switching between them without a reload on one
// WebSocket, unread badges, leaving, an admin watching unseen, and who you are.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  SHOTS,
  bodies,
  connected,
  createAdmin,
  enterRoom,
  loggedInAdmin as adminBrowser,
  person,
  post,
  reconnectNow,
  say,
  serverAndBrowser,
  startServer,
  waitForMessage,
} from "./harness.mjs";

let server;
let browser;

serverAndBrowser({
  prepare: createAdmin,
  use: (s, b) => ([server, browser] = [s, b]),
  current: () => [server, browser],
});

// ---- helpers -------------------------------------------------------------------

/// On a phone the sidebar is behind the header's "Rooms": opened if need be.
async function openSidebar(page) {
  if (!(await page.isVisible("#rooms"))) await page.click("#toggle-rooms");
}

/// Joins (and switches to) `room` through the sidebar's field, until it is live.
async function joinFromSidebar(page, room) {
  await openSidebar(page);
  await page.fill("#join-room", room);
  await page.press("#join-room", "Enter");
  await page.waitForURL(`**/chat/${room}`);
  await page.waitForFunction((r) => document.querySelector(".room-title").textContent === `#${r}`, room);
  await connected(page);
}

/// Clicks a room in the sidebar, until it is on screen and live.
async function switchTo(page, room) {
  await openSidebar(page);
  await page.click(`#rooms .rooms-item[data-room="${room}"] .rooms-link`);
  await page.waitForFunction((r) => document.querySelector(".room-title").textContent === `#${r}`, room);
  await connected(page);
}

const sidebarRooms = (page) => page.$$eval("#rooms .rooms-item", (els) => els.map((e) => e.dataset.room));
const badge = (page, room) =>
  page.$eval(`#rooms .rooms-item[data-room="${room}"] .rooms-badge`, (e) => (e.hidden ? "" : e.textContent));
const members = (page) => page.$$eval("#member-list li", (els) => els.map((e) => e.textContent));
const notices = (page) => page.$$eval("#messages .notice", (els) => els.map((e) => e.textContent));

/// Counts the page's WebSocket connections, and keeps every frame it sends.
function watchSockets(page) {
  const seen = { count: 0, sent: [] };
  page.on("websocket", (ws) => {
    seen.count += 1;
    ws.on("framesent", ({ payload }) => {
      try {
        seen.sent.push(JSON.parse(String(payload)));
      } catch {
        // not JSON: nothing the page sends
      }
    });
  });
  return seen;
}

const loggedInAdmin = (viewport) => adminBrowser(browser, server, viewport);

// ---- the tests -----------------------------------------------------------------

test("three rooms on one socket: badges for the others, switching in place, the title, back and forward", async () => {
  await post(server.url, "/create_room", { room: "alpha" });
  for (let i = 1; i <= 40; i++) await post(server.url, "/store_message", { room: "alpha", text: `alpha ${i}` });
  const ann = await person(browser);
  const sockets = watchSockets(ann.page);
  await enterRoom(ann.page, server.url, "Ann", "alpha");
  await ann.page.evaluate(() => (window.__samePage = true));
  await joinFromSidebar(ann.page, "beta");
  await joinFromSidebar(ann.page, "gamma");
  await say(ann.page, "in gamma");
  await waitForMessage(ann.page, "in gamma");
  // The newest first; the room on screen marked as such.
  assert.deepEqual(await sidebarRooms(ann.page), ["gamma", "beta", "alpha"]);
  assert.equal(await ann.page.getAttribute('#rooms [data-room="gamma"] .rooms-link', "aria-current"), "page");
  assert.equal(await ann.page.getAttribute('#rooms [data-room="beta"] .rooms-link', "aria-current"), null);
  assert.equal(await ann.page.getAttribute('#rooms [data-room="beta"] .rooms-link', "href"), "/chat/beta");

  // Bob talks in beta while Ann reads gamma: a badge, nothing in gamma's list.
  const bob = await person(browser);
  await enterRoom(bob.page, server.url, "Bob", "beta");
  await say(bob.page, "hello beta");
  await say(bob.page, "anyone?");
  await ann.page.waitForFunction(() => document.querySelector('#rooms [data-room="beta"] .rooms-badge').textContent === "2");
  assert.equal(await badge(ann.page, "beta"), "2");
  assert.equal(await badge(ann.page, "alpha"), "");
  assert.equal(await ann.page.title(), "#gamma · Parlor");
  assert.deepEqual(await bodies(ann.page), ["in gamma"]);

  // Switching: beta's messages at once, no reload, the badge gone.
  await switchTo(ann.page, "beta");
  assert.equal(new URL(ann.page.url()).pathname, "/chat/beta");
  assert.deepEqual(await bodies(ann.page), ["hello beta", "anyone?"]);
  assert.equal(await ann.page.title(), "#beta · Parlor");
  assert.equal(await ann.page.getAttribute("#text", "placeholder"), "Message #beta");
  assert.equal(await badge(ann.page, "beta"), "");
  assert.equal(await ann.page.getAttribute('#rooms [data-room="beta"] .rooms-link', "aria-current"), "page");
  assert.deepEqual(await members(ann.page), ["Ann (you)", "Bob"]);
  assert.equal(await ann.page.evaluate(() => window.__samePage), true, "the same page: no navigation");
  await say(ann.page, "hi Bob");
  await waitForMessage(bob.page, "hi Bob");

  // A reply being written, and a draft, stay with their room.
  const hello = ann.page.locator("#messages .msg", { hasText: "hello beta" });
  await hello.hover();
  await hello.locator('[data-action="reply"]').click();
  await ann.page.fill("#text", "half-written answer");
  assert.equal(await ann.page.isVisible("#reply-bar"), true);
  await switchTo(ann.page, "gamma");
  assert.equal(await ann.page.isVisible("#reply-bar"), false);
  assert.equal(await ann.page.inputValue("#text"), "");
  await switchTo(ann.page, "beta");
  assert.match(await ann.page.textContent("#reply-bar"), /Replying to Bob: hello beta/);
  assert.equal(await ann.page.inputValue("#text"), "half-written answer");
  await ann.page.press("#text", "Enter");
  await waitForMessage(bob.page, "half-written answer");
  assert.match(await bob.page.locator("#messages .msg", { hasText: "half-written answer" }).locator(".quote").textContent(), /hello beta/);

  // Alpha keeps its own scroll position.
  await switchTo(ann.page, "alpha");
  assert.equal((await bodies(ann.page)).length, 40);
  assert.ok(await ann.page.$eval("#messages", (m) => m.scrollHeight - m.scrollTop - m.clientHeight < 40), "alpha opens at its end");
  await ann.page.$eval("#messages", (m) => m.scrollTo(0, 300));
  const kept = await ann.page.$eval("#messages", (m) => m.scrollTop);
  await switchTo(ann.page, "gamma");
  assert.deepEqual(await bodies(ann.page), ["in gamma"]);
  await switchTo(ann.page, "alpha");
  const back = await ann.page.$eval("#messages", (m) => m.scrollTop);
  assert.ok(Math.abs(back - kept) <= 2, `alpha came back where it was (${back} vs ${kept})`);

  // The browser's back and forward buttons switch rooms too.
  await ann.page.goBack();
  await ann.page.waitForFunction(() => document.querySelector(".room-title").textContent === "#gamma");
  assert.equal(new URL(ann.page.url()).pathname, "/chat/gamma");
  assert.deepEqual(await bodies(ann.page), ["in gamma"]);
  assert.equal(await ann.page.title(), "#gamma · Parlor");
  await ann.page.goBack();
  await ann.page.waitForFunction(() => document.querySelector(".room-title").textContent === "#alpha");
  await ann.page.goForward();
  await ann.page.waitForFunction(() => document.querySelector(".room-title").textContent === "#gamma");
  assert.equal(await ann.page.evaluate(() => window.__samePage), true, "still the same page");

  // All of it on one socket, every room joined on it once.
  assert.equal(sockets.count, 1, "one WebSocket");
  const joins = sockets.sent.filter((f) => f.type === "join_room").map((f) => f.room);
  assert.deepEqual(joins.sort(), ["alpha", "beta", "gamma"]);

  // A reload joins every room of the sidebar again, the one opened on screen.
  await ann.page.reload();
  await connected(ann.page);
  assert.deepEqual(await sidebarRooms(ann.page), ["gamma", "beta", "alpha"]);
  await say(bob.page, "after the reload");
  await ann.page.waitForFunction(() => document.querySelector('#rooms [data-room="beta"] .rooms-badge').textContent === "1");
  // What came while the page was closed counts too: since beta was last on screen.
  await ann.page.goto(server.url + "/");
  await say(bob.page, "while you were away");
  await waitForMessage(bob.page, "while you were away");
  await ann.page.goto(server.url + "/chat/gamma");
  await connected(ann.page);
  await ann.page.waitForFunction(() => document.querySelector('#rooms [data-room="beta"] .rooms-badge').textContent === "2");
  assert.equal(await badge(ann.page, "alpha"), "", "nothing new in alpha");
  await ann.context.close();
  await bob.context.close();
});

test("a mention in a room off screen marks its badge", async () => {
  const ann = await person(browser);
  await enterRoom(ann.page, server.url, "Ann", "m-one");
  // A name the protocol refuses is explained, as on the home page.
  await ann.page.fill("#join-room", "Not A Room");
  await ann.page.press("#join-room", "Enter");
  assert.match(await ann.page.textContent("#join-room-error"), /lowercase letters, digits/);
  assert.equal(await ann.page.getAttribute("#join-room", "aria-invalid"), "true");
  assert.equal(new URL(ann.page.url()).pathname, "/chat/m-one");
  await joinFromSidebar(ann.page, "m-two");
  assert.equal(await ann.page.textContent("#join-room-error"), "");
  await joinFromSidebar(ann.page, "m-three");
  await switchTo(ann.page, "m-one");
  const bob = await person(browser);
  await enterRoom(bob.page, server.url, "Bob", "m-two");
  await say(bob.page, "just chatting");
  await ann.page.waitForFunction(() => document.querySelector('#rooms [data-room="m-two"] .rooms-badge').textContent === "1");
  assert.equal(await ann.page.getAttribute('#rooms [data-room="m-two"]', "data-mention"), null, "no mention yet");
  await say(bob.page, "@Ann can you look at this?");
  await ann.page.waitForFunction(() => document.querySelector('#rooms [data-room="m-two"]').dataset.mention === "true");
  assert.equal(await badge(ann.page, "m-two"), "@ 2");
  assert.equal(await ann.page.locator('#rooms [data-room="m-two"] .rooms-badge.mention').count(), 1);
  assert.match(await ann.page.getAttribute('#rooms [data-room="m-two"] .rooms-link', "aria-label"), /2 unread, mentioning you/);
  // Elsewhere, a plain message is no mention.
  await post(server.url, "/store_message", { room: "m-three", text: "a bot's note" });
  await ann.page.waitForFunction(() => document.querySelector('#rooms [data-room="m-three"] .rooms-badge').textContent === "1");
  assert.equal(await ann.page.locator('#rooms [data-room="m-three"] .rooms-badge.mention').count(), 0);
  // Read: the mention is shown marked, and the badge is gone.
  await switchTo(ann.page, "m-two");
  assert.equal(await badge(ann.page, "m-two"), "");
  assert.equal(await ann.page.locator("#messages .msg.mentions-me").count(), 1);
  await ann.context.close();
  await bob.context.close();
});

test("leaving a room with its ×: the others see it, the sidebar forgets it, even after a reload", async () => {
  const ann = await person(browser);
  const sockets = watchSockets(ann.page);
  await enterRoom(ann.page, server.url, "Ann", "stay");
  await joinFromSidebar(ann.page, "go");
  const bob = await person(browser);
  await enterRoom(bob.page, server.url, "Bob", "go");
  await bob.page.waitForFunction(() => document.getElementById("member-list").textContent.includes("Ann"));
  // Leaving the room on screen: the next one in the list takes its place.
  await ann.page.click('#rooms button[aria-label="Leave #go"]');
  await ann.page.waitForURL("**/chat/stay");
  await ann.page.waitForFunction(() => document.querySelector(".room-title").textContent === "#stay");
  assert.deepEqual(await sidebarRooms(ann.page), ["stay"]);
  assert.deepEqual(
    sockets.sent.filter((f) => f.type === "leave_room"),
    [{ type: "leave_room", room: "go" }],
  );
  await bob.page.waitForFunction(() => [...document.querySelectorAll("#messages .notice")].some((p) => p.textContent === "Ann left"));
  assert.deepEqual(await members(bob.page), ["Bob (you)"]);
  // Bob's messages in it reach Ann no more.
  await say(bob.page, "still there?");
  await waitForMessage(bob.page, "still there?");
  await ann.page.waitForTimeout(300);
  assert.equal(await ann.page.locator('#rooms [data-room="go"]').count(), 0);
  assert.equal(await ann.page.evaluate(() => "go" in JSON.parse(localStorage.getItem("parlor:seen") ?? "{}")), false);
  await ann.page.reload();
  await connected(ann.page);
  assert.deepEqual(await sidebarRooms(ann.page), ["stay"], "still gone after a reload");
  // The last room left: the home page.
  await Promise.all([ann.page.waitForURL(server.url + "/"), ann.page.click('#rooms button[aria-label="Leave #stay"]')]);
  await ann.context.close();
  await bob.context.close();
});

test("offline in two rooms: what was sent in each arrives once, in its room", async () => {
  const ann = await person(browser);
  await enterRoom(ann.page, server.url, "Ann", "off-a");
  await joinFromSidebar(ann.page, "off-b");
  await say(ann.page, "b before");
  await waitForMessage(ann.page, "b before");

  const { port, db } = server;
  await server.stop();
  await ann.page.waitForFunction(() => document.getElementById("status").classList.contains("offline"));
  await say(ann.page, "b while away");
  await ann.page.waitForSelector("#messages .msg.pending");
  await ann.page.click('#rooms [data-room="off-a"] .rooms-link');
  await ann.page.waitForFunction(() => document.querySelector(".room-title").textContent === "#off-a");
  assert.equal(await ann.page.isDisabled("#text"), false, "the composer works offline");
  await say(ann.page, "a while away");
  await ann.page.waitForSelector("#messages .msg.pending");

  // Meanwhile off-b goes on elsewhere (the same log, another address).
  const elsewhere = await startServer({ db });
  await post(elsewhere.url, "/store_message", { room: "off-b", text: "b from elsewhere" });
  await elsewhere.stop();

  server = await startServer({ port, db });
  await reconnectNow(ann.page);
  await waitForMessage(ann.page, "a while away");
  await ann.page.waitForFunction(() => document.querySelectorAll("#messages .msg.pending").length === 0);
  assert.deepEqual(await bodies(ann.page), ["a while away"]);
  // What off-b missed counts as unread there (not Ann's own).
  await ann.page.waitForFunction(() => document.querySelector('#rooms [data-room="off-b"] .rooms-badge').textContent === "1");
  await switchTo(ann.page, "off-b");
  await waitForMessage(ann.page, "b while away");
  await ann.page.waitForFunction(() => document.querySelectorAll("#messages .msg.pending").length === 0);
  assert.deepEqual(await bodies(ann.page), ["b before", "b from elsewhere", "b while away"]);
  const stored = async (room) =>
    (await (await fetch(`${server.url}/api/rooms/${room}/messages`)).json()).messages.map((m) => m.text);
  assert.deepEqual(await stored("off-a"), ["a while away"], "stored once");
  assert.deepEqual(await stored("off-b"), ["b while away", "b from elsewhere", "b before"], "stored once (newest first)");
  await ann.context.close();
});

test("an encrypted room and plain ones side by side: each room its own key, badge, panel and composer", async () => {
  const ann = await person(browser);
  await ann.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
  await ann.page.goto(server.url + "/");
  await ann.page.fill("#name", "Ann");
  await ann.page.fill("#room", "sealed");
  await ann.page.check('input[name="e2e"][value="link"]');
  await ann.page.click("#go");
  await ann.page.waitForURL("**/chat/sealed");
  await connected(ann.page);
  const key = await ann.page.evaluate(() => localStorage.getItem("parlor:key:sealed"));
  assert.ok(key, "the room's key is kept");
  // Another encrypted room, whose key Ann does not have.
  await post(server.url, "/create_room", { room: "sealed-other", encryption: "link" });
  await joinFromSidebar(ann.page, "open-plain");
  assert.equal(await ann.page.isVisible("#e2e-badge"), false);
  assert.equal(await ann.page.isVisible("#e2e-panel"), false);

  // Bob writes in the encrypted room while Ann reads the plain one.
  const bob = await person(browser);
  await bob.page.goto(`${server.url}/chat/sealed#k=${key}`);
  await bob.page.waitForSelector("#name-dialog[open]");
  await bob.page.fill("#name-input", "Bob");
  await bob.page.click("#name-form button[type=submit]");
  await connected(bob.page);
  await say(bob.page, "the blue folder, @Ann");
  // Decrypted off screen: the mention is found in the plaintext.
  await ann.page.waitForFunction(() => document.querySelector('#rooms [data-room="sealed"] .rooms-badge').textContent === "@ 1");
  assert.deepEqual(await bodies(ann.page), []);
  await switchTo(ann.page, "sealed");
  await waitForMessage(ann.page, "the blue folder, @Ann");
  assert.equal(await ann.page.isVisible("#e2e-badge"), true);
  assert.equal(await ann.page.isVisible("#key-form"), false);
  assert.equal(await ann.page.isDisabled("#text"), false);
  await say(ann.page, "got it");
  await waitForMessage(bob.page, "got it");
  await ann.page.click("#copy-link");
  await ann.page.waitForFunction(() => document.getElementById("copy-link").textContent === "Link copied");
  assert.equal(await ann.page.evaluate(() => navigator.clipboard.readText()), `${server.url}/chat/sealed#k=${key}`);

  // The other encrypted room: no key here, so its form, and no composer.
  await joinFromSidebar(ann.page, "sealed-other");
  assert.equal(await ann.page.isVisible("#e2e-badge"), true);
  assert.equal(await ann.page.isVisible("#key-form"), true);
  assert.equal(await ann.page.isDisabled("#text"), true);
  assert.match(await ann.page.textContent("#composer-note"), /does not have its invite link/);
  // Back in the plain room: nothing of either.
  await switchTo(ann.page, "open-plain");
  assert.equal(await ann.page.isVisible("#e2e-badge"), false);
  assert.equal(await ann.page.isVisible("#key-form"), false);
  assert.equal(await ann.page.isDisabled("#text"), false);
  assert.equal(await ann.page.textContent("#composer-note"), "");
  await switchTo(ann.page, "sealed");
  assert.equal(await ann.page.isVisible("#key-form"), false);
  assert.deepEqual(await bodies(ann.page), ["the blue folder, @Ann", "got it"]);
  await ann.context.close();
  await bob.context.close();
});

test("an admin watching unseen is in no member list and announced to no one, until joining visibly", async () => {
  const mia = await person(browser);
  await enterRoom(mia.page, server.url, "Mia", "watched");
  const admin = await loggedInAdmin();
  await admin.page.goto(server.url + "/chat/watched?watch");
  await connected(admin.page);
  const banner = admin.page.locator("#watch-banner");
  assert.equal(await banner.isVisible(), true);
  assert.equal(await banner.locator("span").textContent(), "Watching #watched unseen — members can't see you");
  assert.equal(await admin.page.textContent('#rooms [data-room="watched"] .rooms-tag'), "unseen");
  await say(mia.page, "nobody here but me");
  await waitForMessage(admin.page, "nobody here but me");
  assert.deepEqual(await members(mia.page), ["Mia (you)"]);
  assert.deepEqual(await notices(mia.page), [], "no presence notice");
  assert.ok(!(await members(admin.page)).some((name) => name.startsWith("root")), "not even in the admin's own list");
  // Not remembered: opening another room later must not join this one in sight.
  assert.equal(await admin.page.evaluate(() => localStorage.getItem("parlor:rooms")), null);

  await admin.page.click("#join-visibly");
  await mia.page.waitForFunction(() => [...document.querySelectorAll("#messages .notice")].some((p) => p.textContent === "root joined"));
  await mia.page.waitForFunction(() => document.getElementById("member-list").textContent.includes("root"));
  assert.deepEqual(await members(mia.page), ["Mia (you)", "root"]);
  assert.equal(await banner.isVisible(), false);
  assert.equal(new URL(admin.page.url()).search, "", "no ?watch any more");
  assert.deepEqual(JSON.parse(await admin.page.evaluate(() => localStorage.getItem("parlor:rooms"))), ["watched"]);
  await admin.page.waitForFunction(() => document.getElementById("member-list").textContent.includes("root (you)"));
  await mia.context.close();
  await admin.context.close();
});

test("who you are: a guest's name, an account's with a working Log out", async () => {
  // A guest who arrives by a link chooses a name, and sees it.
  const gus = await person(browser);
  await gus.page.goto(server.url + "/chat/whoroom");
  await gus.page.waitForSelector("#name-dialog[open]");
  assert.equal(await gus.page.textContent("#whoami .whoami-name"), "");
  await gus.page.fill("#name-input", "Gus");
  await gus.page.click("#name-form button[type=submit]");
  await connected(gus.page);
  assert.equal(await gus.page.textContent("#whoami .whoami-name"), "Gus");
  assert.equal(await gus.page.textContent("#whoami .tag"), "guest");
  await gus.page.reload();
  await connected(gus.page);
  assert.equal(await gus.page.textContent("#whoami .whoami-name"), "Gus");

  // An account.
  const acc = await person(browser);
  await acc.page.goto(server.url + "/signup");
  await acc.page.fill("#name", "Avery");
  await acc.page.fill("#password", "long enough secret");
  await Promise.all([acc.page.waitForURL(server.url + "/"), acc.page.click("#submit")]);
  await acc.page.goto(server.url + "/chat/whoroom");
  await connected(acc.page);
  assert.equal(await acc.page.textContent("#whoami .whoami-name"), "Avery");
  await joinFromSidebar(acc.page, "whoroom-two");
  assert.equal(await acc.page.textContent("#whoami .whoami-name"), "Avery");
  await Promise.all([acc.page.waitForURL(server.url + "/"), acc.page.click("#logout")]);
  // A guest now: the home page offers to log in.
  assert.match(await acc.page.textContent(".account-line"), /Chat as a guest/);
  await acc.page.goto(server.url + "/chat/whoroom");
  assert.equal(await acc.page.textContent("#whoami .tag"), "guest");
  assert.equal(await acc.page.locator("#logout").count(), 0);
  await gus.context.close();
  await acc.context.close();
});

test("screenshots: several rooms with badges at desktop and phone width", async () => {
  const zoe = await person(browser);
  const pia = await person(browser, { width: 390, height: 844 });
  await enterRoom(zoe.page, server.url, "Zoe", "design");
  for (const room of ["support", "random", "release-planning-2027"]) await joinFromSidebar(zoe.page, room);
  await enterRoom(pia.page, server.url, "Pia", "design");
  for (const room of ["support", "random", "release-planning-2027"]) await joinFromSidebar(pia.page, room);
  await switchTo(zoe.page, "design");
  await switchTo(pia.page, "design");
  await say(zoe.page, "Morning! The new sidebar mockups are up.");
  await say(pia.page, "Looks great. One question about the phone layout.");
  await waitForMessage(zoe.page, "Looks great. One question about the phone layout.");
  await post(server.url, "/store_message", { room: "support", text: "Ticket 4411: login loop on Safari" });
  await post(server.url, "/store_message", { room: "support", text: "@Zoe @Pia can one of you take it?" });
  await post(server.url, "/store_message", { room: "random", text: "Lunch at noon?" });
  for (const { page } of [zoe, pia]) {
    await page.waitForFunction(() => document.querySelector('#rooms [data-room="support"]').dataset.mention === "true");
    await page.waitForFunction(() => document.querySelector('#rooms [data-room="random"] .rooms-badge').textContent === "1");
  }
  await zoe.page.screenshot({ path: join(SHOTS, "rooms-desktop.png") });

  // A phone: the list is behind "Rooms", which carries the unread total.
  assert.equal(await pia.page.isVisible("#rooms"), false);
  assert.equal(await pia.page.isVisible("#toggle-rooms"), true);
  assert.equal(await pia.page.textContent("#toggle-rooms .rooms-badge"), "@ 3");
  await pia.page.screenshot({ path: join(SHOTS, "rooms-phone.png") });
  const fits = () => pia.page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  assert.ok(await fits(), "no sideways scrolling");
  await pia.page.click("#toggle-rooms");
  assert.equal(await pia.page.isVisible("#rooms"), true);
  assert.equal(await pia.page.getAttribute("#toggle-rooms", "aria-expanded"), "true");
  await pia.page.screenshot({ path: join(SHOTS, "rooms-phone-open.png") });
  assert.ok(await fits(), "no sideways scrolling with the list open");
  const box = await pia.page.locator("#rooms").boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 390, "the list is on screen");
  // Picking a room closes the list.
  await pia.page.click('#rooms [data-room="support"] .rooms-link');
  await pia.page.waitForFunction(() => document.querySelector(".room-title").textContent === "#support");
  assert.equal(await pia.page.isVisible("#rooms"), false);
  await waitForMessage(pia.page, "@Zoe @Pia can one of you take it?");
  assert.equal(await pia.page.textContent("#toggle-rooms .rooms-badge"), "1");
  await pia.page.screenshot({ path: join(SHOTS, "rooms-phone-switched.png") });
  assert.ok(await fits(), "no sideways scrolling after switching");
  await zoe.context.close();
  await pia.context.close();
});
