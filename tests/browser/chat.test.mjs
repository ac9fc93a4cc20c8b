// The pages, driven in headless Chromium as people drive them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  SHOTS,
  bodies,
  connected,
  enterRoom,
  ids,
  person,
  post,
  say,
  serverAndBrowser,
  waitForMessage,
} from "./harness.mjs";

const HOSTILE = "<img src=x onerror=alert(1)>";
let server;
let browser;

serverAndBrowser({ use: (s, b) => ([server, browser] = [s, b]), current: () => [server, browser] });

test("the home page creates a room and lands in it; a bad room name is explained next to the field", async () => {
  const { context, page } = await person(browser);
  await page.goto(server.url + "/");
  await page.fill("#name", "Ada");
  await page.fill("#room", "Not A Room");
  await page.click("#go");
  await page.waitForFunction(() => document.getElementById("room-error").textContent.includes("lowercase"));
  assert.equal(new URL(page.url()).pathname, "/", "an invalid form is not submitted");
  assert.equal(await page.getAttribute("#room", "aria-invalid"), "true");

  // A link to a bad room lands on the home page with the reason.
  const response = await page.goto(server.url + "/chat/Not%20A%20Room");
  assert.equal(response.status(), 400);
  assert.match(await page.textContent("#room-error"), /room names use lowercase/);

  // An empty room field makes a fresh code.
  await page.fill("#name", "Ada");
  await page.fill("#room", "");
  await Promise.all([page.waitForURL(/\/chat\/[a-z0-9]{8}$/), page.click("#go")]);
  await connected(page);
  const code = new URL(page.url()).pathname.split("/").pop();
  assert.equal(await page.title(), `#${code} · Parlor`);
  assert.deepEqual(await page.$$eval("#member-list li", (els) => els.map((e) => e.textContent)), ["Ada (you)"]);

  // The name is remembered: the home page offers it next time.
  await page.goto(server.url + "/");
  assert.equal(await page.inputValue("#name"), "Ada");
  await context.close();
});

test("two people see each other's messages, presence and typing", async () => {
  const alice = await person(browser);
  const bob = await person(browser);
  await enterRoom(alice.page, server.url, "Alice", "duo");
  await enterRoom(bob.page, server.url, "Bob", "duo");

  await alice.page.waitForFunction(() => document.querySelector("#messages .notice")?.textContent === "Bob joined");
  await alice.page.waitForFunction(() =>
    [...document.querySelectorAll("#member-list li")].map((e) => e.textContent).join() === "Alice (you),Bob",
  );

  await alice.page.type("#text", "typing slowly");
  await bob.page.waitForFunction(() => document.getElementById("typing").textContent === "Alice is typing…");
  await alice.page.press("#text", "Enter");
  await waitForMessage(bob.page, "typing slowly");
  await say(bob.page, "hello Alice");
  await waitForMessage(alice.page, "hello Alice");
  // Bob's own copy (his confirmation) comes on his socket, maybe later.
  await waitForMessage(bob.page, "hello Alice");

  assert.deepEqual(await bodies(alice.page), ["typing slowly", "hello Alice"]);
  assert.deepEqual(await bodies(bob.page), ["typing slowly", "hello Alice"]);
  // Own messages are set apart; each shows its sender.
  const own = await alice.page.$$eval("#messages .msg.own .body", (els) => els.map((e) => e.textContent));
  assert.deepEqual(own, ["typing slowly"]);
  const senders = await bob.page.$$eval("#messages .msg .who", (els) => els.map((e) => e.textContent));
  assert.deepEqual(senders, ["Alice", "Bob"]);

  // Shift+Enter makes a new line; Enter sends the two lines as one message.
  await bob.page.fill("#text", "line one");
  await bob.page.press("#text", "Shift+Enter");
  await bob.page.type("#text", "line two");
  await bob.page.press("#text", "Enter");
  await waitForMessage(alice.page, "line one\nline two");

  await bob.context.close();
  await alice.page.waitForFunction(() => document.querySelector("#messages .notice:last-of-type")?.textContent === "Bob left");
  await alice.context.close();
});

test("hostile names and messages are shown as text and run nothing", async () => {
  const eve = await person(browser);
  const ann = await person(browser);
  await enterRoom(eve.page, server.url, HOSTILE, "hostile");
  await enterRoom(ann.page, server.url, "Ann", "hostile");
  const attacks = [
    "<script>window.pwned = true</script>",
    '<img src=x onerror="window.pwned = true">',
    "javascript:window.pwned=true",
    "see https://example.com/a?b=<c>",
  ];
  for (const text of attacks) await say(eve.page, text);
  for (const { page } of [eve, ann]) {
    // Eve's own copies are confirmed by the server too, not only shown.
    for (const text of attacks) await waitForMessage(page, text);
    assert.deepEqual(await bodies(page), attacks);
    assert.equal(await page.evaluate(() => window.pwned), undefined, "no injected script ran");
    assert.equal(await page.locator("#messages img, #member-list img, #messages script").count(), 0);
    assert.deepEqual(page.dialogs, []);
  }
  const names = await ann.page.$$eval("#member-list li", (els) => els.map((e) => e.textContent));
  assert.ok(names.includes(HOSTILE), `the name is listed as text: ${names}`);
  // Links become safe links; nothing else does.
  const links = await ann.page.$$eval("#messages .body a", (els) => els.map((a) => [a.href, a.rel, a.target]));
  // The link ends where markup would begin.
  assert.deepEqual(links, [["https://example.com/a?b=", "noopener noreferrer nofollow", "_blank"]]);
  await eve.context.close();
  await ann.context.close();
});

test("reloading the room shows its history in order, once", async () => {
  const { context, page } = await person(browser);
  await enterRoom(page, server.url, "Rae", "reload");
  const sent = ["one", "two", "three", "four", "five"];
  for (const text of sent) await say(page, text);
  await waitForMessage(page, "five");
  await page.reload();
  await connected(page);
  assert.deepEqual(await bodies(page), sent);
  const seen = await ids(page);
  assert.deepEqual(seen, [...seen].sort((a, b) => a - b));
  assert.equal(new Set(seen).size, seen.length);
  await context.close();
});

test("scrolling to the top loads older history without the view jumping", async () => {
  await post(server.url, "/create_room", { room: "long" });
  for (let i = 1; i <= 120; i++) await post(server.url, "/store_message", { room: "long", user: "bot", text: `m${i}` });
  const { context, page } = await person(browser);
  await enterRoom(page, server.url, "Sam", "long");
  assert.equal((await ids(page)).length, 50, "the latest 50 on arrival");
  assert.ok(await page.$eval("#messages", (m) => m.scrollHeight - m.scrollTop - m.clientHeight < 40), "at the bottom");

  const anchor = await page.$eval("#messages .msg[data-id]", (e) => e.dataset.id);
  await page.$eval("#messages", (m) => m.scrollTo(0, 0));
  await page.waitForFunction(() => document.querySelectorAll("#messages .msg[data-id]").length === 100);
  // The message that was at the top is still in view where it was.
  const top = await page.$eval(`#messages .msg[data-id="${anchor}"]`, (e) => {
    const box = e.getBoundingClientRect();
    const list = document.getElementById("messages").getBoundingClientRect();
    return box.top - list.top;
  });
  assert.ok(top >= -5 && top < 100, `the anchor stayed near the top of the view (${top}px)`);
  await page.$eval("#messages", (m) => m.scrollTo(0, 0));
  await page.waitForFunction(() => document.querySelectorAll("#messages .msg[data-id]").length === 120);
  const seen = await ids(page);
  assert.deepEqual(seen, Array.from({ length: 120 }, (_, i) => i + 1));
  await context.close();
});

test("a message arriving while the tab is hidden counts in the title", async () => {
  const alice = await person(browser);
  const bob = await person(browser);
  await enterRoom(alice.page, server.url, "Alice", "unread");
  await enterRoom(bob.page, server.url, "Bob", "unread");
  await alice.page.evaluate(() => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  await say(bob.page, "are you there?");
  await say(bob.page, "hello?");
  await alice.page.waitForFunction(() => document.title === "(2) #unread · Parlor");
  await alice.page.evaluate(() => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => false });
    document.dispatchEvent(new Event("visibilitychange"));
  });
  assert.equal(await alice.page.title(), "#unread · Parlor");
  await alice.context.close();
  await bob.context.close();
});

test("the invite link is copied", async () => {
  const { context, page } = await person(browser);
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
  await enterRoom(page, server.url, "Kim", "invite");
  await page.click("#copy-link");
  await page.waitForFunction(() => document.getElementById("copy-link").textContent === "Link copied");
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `${server.url}/chat/invite`);
  await context.close();
});

test("screenshots of the room at desktop and phone width", async () => {
  const alice = await person(browser);
  await enterRoom(alice.page, server.url, "Alice", "lobby");
  const bob = await person(browser, { width: 360, height: 740 });
  await enterRoom(bob.page, server.url, "Bob", "lobby");
  await say(alice.page, "Morning! Notes from yesterday: https://example.com/notes");
  await say(bob.page, "Thanks, reading them now.");
  await say(bob.page, "Standup at 10?");
  await say(alice.page, "Yes, see you there.");
  await waitForMessage(bob.page, "Yes, see you there.");
  await bob.page.type("#text", "On my w");
  await alice.page.waitForFunction(() => document.getElementById("typing").textContent === "Bob is typing…");
  await alice.page.screenshot({ path: join(SHOTS, "room-desktop.png") });
  await bob.page.screenshot({ path: join(SHOTS, "room-phone.png") });
  // On a phone the member list opens on demand.
  assert.equal(await bob.page.isVisible("#members"), false);
  await bob.page.click("#toggle-members");
  assert.equal(await bob.page.isVisible("#members"), true);
  assert.equal(await bob.page.textContent("#toggle-members"), "Members (2)");
  await bob.page.screenshot({ path: join(SHOTS, "room-phone-members.png") });
  await alice.context.close();
  await bob.context.close();
});

test("a reader scrolled up is not yanked down: new messages show a pill instead", async () => {
  await post(server.url, "/create_room", { room: "pill" });
  for (let i = 1; i <= 60; i++) await post(server.url, "/store_message", { room: "pill", user: "bot", text: `old ${i}` });
  const { context, page } = await person(browser);
  await enterRoom(page, server.url, "Pat", "pill");
  await page.$eval("#messages", (m) => m.scrollTo(0, 200));
  const before = await page.$eval("#messages", (m) => m.scrollTop);
  await post(server.url, "/store_message", { room: "pill", user: "bot", text: "fresh news" });
  await waitForMessage(page, "fresh news");
  await page.waitForSelector(".new-pill");
  assert.equal(await page.$eval("#messages", (m) => m.scrollTop), before, "the view stayed where the reader was");
  await page.click(".new-pill");
  assert.ok(await page.$eval("#messages", (m) => m.scrollHeight - m.scrollTop - m.clientHeight < 40), "at the bottom");
  assert.equal(await page.locator(".new-pill").count(), 0);
  // At the bottom, the next message scrolls into view by itself.
  await post(server.url, "/store_message", { room: "pill", user: "bot", text: "more news" });
  await waitForMessage(page, "more news");
  await page.waitForFunction(() => {
    const m = document.getElementById("messages");
    return m.scrollHeight - m.scrollTop - m.clientHeight < 40;
  });
  assert.equal(await page.locator(".new-pill").count(), 0);
  await context.close();
});

test("the home page's room list follows who is chatting, and a blank name is explained", async () => {
  const { context, page } = await person(browser);
  await page.goto(server.url + "/");
  await page.fill("#name", "   ");
  await page.fill("#room", "somewhere");
  await page.click("#go");
  await page.waitForFunction(() => document.getElementById("name-error").textContent === "display name must not be empty");
  assert.equal(new URL(page.url()).pathname, "/");

  const visitor = await person(browser);
  await enterRoom(visitor.page, server.url, "Vic", "live-list");
  // The list refreshes by itself every few seconds.
  await page.waitForFunction(
    () => [...document.querySelectorAll("#active-rooms li")].some((li) => li.textContent === "live-list 1 online"),
    null,
    { timeout: 12000 },
  );
  await visitor.context.close();
  await page.waitForFunction(
    () => ![...document.querySelectorAll("#active-rooms li")].some((li) => li.textContent.startsWith("live-list ")),
    null,
    { timeout: 12000 },
  );
  await context.close();
});

test("a room's history starts with a marker, its days are named, and each time shows its full date on hover", async () => {
  const { context, page } = await person(browser);
  await enterRoom(page, server.url, "Dana", "days");
  await say(page, "first");
  await say(page, "second");
  await waitForMessage(page, "second");
  await page.reload();
  await connected(page);
  await waitForMessage(page, "second");
  // The whole history is here: the page says where it starts.
  assert.equal(await page.textContent("#messages .history-start"), "This is the start of #days.");
  const first = await page.evaluate(() => document.querySelector("#messages").firstElementChild.className);
  assert.equal(first, "history-start", "above everything else");
  // One day, named once, right above its first message.
  assert.deepEqual(await page.$$eval("#messages .day", (els) => els.map((e) => e.textContent)), ["Today"]);
  const afterDay = await page.evaluate(() => document.querySelector("#messages .day").nextElementSibling.textContent);
  assert.match(afterDay, /first/);
  const title = await page.getAttribute("#messages .msg[data-id] time", "title");
  assert.match(title, new RegExp(String(new Date().getFullYear())), `the full date: ${title}`);
  await context.close();
});
