// The admin console, used from a browser as an operator would.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  SHOTS,
  createAdmin,
  enterRoom,
  loggedInAdmin as adminBrowser,
  person,
  say,
  serverAndBrowser,
  waitForMessage,
} from "./harness.mjs";

let server;
let browser;

// The first admin, as an operator makes one.
serverAndBrowser({
  prepare: createAdmin,
  use: (s, b) => ([server, browser] = [s, b]),
  current: () => [server, browser],
});

const loggedInAdmin = (viewport) => adminBrowser(browser, server, viewport);

test("an admin kicks a member from the console; the member's page says so and stays out", async () => {
  const victim = await person(browser);
  await enterRoom(victim.page, server.url, "Troll", "moderated");
  await say(victim.page, "spam spam spam");
  await waitForMessage(victim.page, "spam spam spam");

  const admin = await loggedInAdmin();
  await admin.page.goto(server.url + "/admin");
  // The live figures: one connection (the troll's page; the console has no
  // WebSocket) and one room, with the rates drawn as lines.
  await admin.page.waitForFunction(
    () => document.querySelector('#live-figures [data-figure="connections"] strong').textContent === "1",
  );
  await admin.page.waitForFunction(
    () => document.querySelector('#live-figures [data-figure="messages_per_sec"] polyline').getAttribute("points") !== "",
  );
  assert.match(await admin.page.textContent("#live-notes"), /1 active rooms, 1 memberships/);
  const row = admin.page.locator('tr[data-room="moderated"] [data-user="Troll"]');
  await row.waitFor();
  // Shown in the admin's own time, the UTC one on hover.
  assert.match(await row.locator("time").getAttribute("title"), /Z \(UTC\)$/, "the connection time is shown");
  assert.doesNotMatch(await row.locator("time").textContent(), /Z$/);
  await row.locator('button[data-action="kick"]').click();

  await victim.page.waitForFunction(() => document.getElementById("status").textContent === "removed from the room");
  assert.equal(await victim.page.isDisabled("#text"), true);
  // It does not sneak back in by reconnecting.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.equal(await victim.page.textContent("#status"), "removed from the room");
  // Nor by reloading, nor under another name from the same browser: kept
  // out for the cooldown, and told for how long.
  await victim.page.reload();
  await victim.page.waitForFunction(() => document.getElementById("status").textContent === "removed from the room");
  assert.match(await victim.page.textContent("#messages"), /you may come back in 10 minute\(s\)/);
  const other = await victim.context.newPage();
  await other.goto(server.url + "/");
  await other.fill("#name", "Totally Not Troll");
  await other.fill("#room", "moderated");
  await Promise.all([other.waitForURL("**/chat/moderated"), other.click("#go")]);
  await other.waitForFunction(() => document.getElementById("status").textContent === "removed from the room");
  await other.close();

  await admin.page.waitForURL(server.url + "/admin");
  await admin.page.waitForSelector("#audit-log");
  const entry = await admin.page.locator("#audit-log tbody tr").first().textContent();
  assert.match(entry, /root\s*kick\s*Troll from moderated/);
  await victim.context.close();
  await admin.context.close();
});

test("an admin deletes a message from the room page; it disappears for everyone", async () => {
  const ann = await person(browser);
  await enterRoom(ann.page, server.url, "Ann", "tidy");
  await say(ann.page, "keep this");
  await say(ann.page, "regrettable");
  await waitForMessage(ann.page, "regrettable");

  const admin = await loggedInAdmin();
  await admin.page.goto(server.url + "/chat/tidy");
  await waitForMessage(admin.page, "regrettable");
  const target = admin.page.locator("#messages .msg", { hasText: "regrettable" });
  await target.hover();
  await target.locator("button.delete").click();
  // Asked in the page first (no browser dialog).
  await target.locator("button.confirm-delete").click();

  for (const { page } of [ann, admin]) {
    await page.waitForFunction(() =>
      ![...document.querySelectorAll("#messages .msg .body")].some((e) => e.textContent === "regrettable"),
    );
  }
  // Members may delete their own messages only: no Delete on anyone else's.
  assert.equal(await ann.page.locator("#messages .msg:not(.own) button.delete").count(), 0, "members see no delete buttons on others' messages");
  assert.deepEqual(admin.page.dialogs, []);
  await ann.page.reload();
  await waitForMessage(ann.page, "keep this");
  const texts = await ann.page.$$eval("#messages .msg .body", (els) => els.map((e) => e.textContent));
  assert.deepEqual(texts, ["keep this"], "gone from history too");
  await ann.context.close();
  await admin.context.close();
});

test("the console lists what is in force and undoes it: unmute, reopen; guests get no Ban button", async () => {
  const guest = await person(browser);
  await enterRoom(guest.page, server.url, "Quiet Guest", "hushed");
  const admin = await loggedInAdmin();
  await admin.page.goto(server.url + "/admin");
  const row = admin.page.locator('tr[data-room="hushed"] [data-user="Quiet Guest"]');
  await row.waitFor();
  assert.equal(await row.locator('button[data-action="ban"]').count(), 0, "a guest has no account to ban");
  await row.locator('button[data-action="mute"]').click();
  // Listed by the name's canonical key, which is what a mute holds.
  const muted = admin.page.locator("#in-force tr", { hasText: "muted in hushed" });
  await muted.waitFor();

  // The guest is told at once, before typing: the composer is off, and
  // says for how long.
  await guest.page.waitForFunction(() => document.getElementById("text").disabled);
  assert.match(await guest.page.textContent("#composer-note"), /an admin muted you in this room for 10 more minutes/);
  await muted.locator('button[data-action="unmute"]').click();
  await muted.waitFor({ state: "detached" });
  await guest.page.waitForFunction(() => !document.getElementById("text").disabled);
  await say(guest.page, "free to speak again");
  await waitForMessage(guest.page, "free to speak again");

  // A closed room leaves the active rooms but stays in force, reopenable.
  // (Closed through the API: the console's Close asks to confirm.)
  await admin.page.evaluate(() =>
    fetch("/admin/rooms/hushed/close", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }),
  );
  await admin.page.reload();
  const closed = admin.page.locator('#in-force tr[data-room="hushed"]');
  await closed.waitFor();
  await closed.locator('button[data-action="reopen"]').click();
  await admin.page.waitForSelector('#in-force tr[data-room="hushed"]', { state: "detached" });
  await enterRoom(guest.page, server.url, "Quiet Guest", "hushed");
  await guest.context.close();
  await admin.context.close();
});

test("the console is a header link away for admins, fits a phone, and tells other browsers it is for admins", async () => {
  const visitor = await person(browser);
  const refused = await visitor.page.goto(server.url + "/admin");
  assert.equal(refused.status(), 401);
  assert.match(await visitor.page.textContent("#admins-only"), /Admins only/);
  assert.equal(await visitor.page.getAttribute("#admins-only a.button", "href"), "/login");
  await visitor.page.goto(server.url + "/");
  assert.equal(await visitor.page.locator("a.admin-link").count(), 0, "no console link for visitors");

  const guest = await person(browser);
  await enterRoom(guest.page, server.url, "A Guest With A Rather Long Name Indeed", "a-room-with-a-long-name-too");
  const admin = await loggedInAdmin({ width: 390, height: 844 });
  await admin.page.goto(server.url + "/");
  await Promise.all([admin.page.waitForURL(server.url + "/admin"), admin.page.click("a.admin-link")]);
  await admin.page.locator('tr[data-room="a-room-with-a-long-name-too"]').waitFor();
  const width = await admin.page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390, `the console is ${width} px wide on a 390 px screen`);
  await admin.page.screenshot({ path: join(SHOTS, "admin-phone.png"), fullPage: true });
  await visitor.context.close();
  await guest.context.close();
  await admin.context.close();
});
