// Moderation that sticks, from a browser: a guest banned from a room in the
// console stays out under any name, and an admin lets them back in.
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

serverAndBrowser({
  prepare: createAdmin,
  use: (s, b) => ([server, browser] = [s, b]),
  current: () => [server, browser],
});

const loggedInAdmin = (viewport) => adminBrowser(browser, server, viewport);

const status = (page) => page.textContent("#status");

test("a guest banned from a room in the console stays out under any name until an admin lets them in", async () => {
  const pest = await person(browser);
  await enterRoom(pest.page, server.url, "Pest", "club");
  await say(pest.page, "buy my stuff");
  await waitForMessage(pest.page, "buy my stuff");
  const regular = await person(browser);
  await enterRoom(regular.page, server.url, "Regular", "club");

  const admin = await loggedInAdmin();
  await admin.page.goto(server.url + "/admin");
  const row = admin.page.locator('tr[data-room="club"] [data-user="Pest"]');
  await row.waitFor();
  // Asked once more in the page, then done: no browser dialog.
  const ban = row.locator('button[data-action="roomban"]');
  await ban.click();
  assert.match(await ban.textContent(), /^Really\? Ban from room$/);
  await ban.click();

  await pest.page.waitForFunction(() => document.getElementById("status").textContent === "removed from the room");
  // Another name, from the same browser (a fresh tab of it): still out, and told why.
  const again = await pest.context.newPage();
  await again.goto(server.url + "/");
  await again.fill("#name", "Definitely Someone Else");
  await again.fill("#room", "club");
  await Promise.all([again.waitForURL("**/chat/club"), again.click("#go")]);
  await again.waitForFunction(() => document.getElementById("status").textContent === "removed from the room");
  assert.match(await again.textContent("#messages"), /an admin removed you from room 'club'/);
  await again.close();
  // The others chat on.
  await say(regular.page, "peace at last");
  await waitForMessage(regular.page, "peace at last");

  // The console lists it, and lets them in.
  await admin.page.reload();
  const kept = admin.page.locator("#in-force tr", { hasText: "kept out of club" });
  await kept.waitFor();
  assert.match(await kept.textContent(), /Pest\s*guest/);
  assert.match(await kept.textContent(), /until lifted/);
  await admin.page.screenshot({ path: join(SHOTS, "moderation-console-desktop.png"), fullPage: true });
  await kept.locator('button[data-action="letin"]').click();
  await kept.waitFor({ state: "detached" });
  await pest.page.reload();
  await pest.page.waitForFunction(() => document.getElementById("status").textContent === "connected");
  assert.equal(await status(pest.page), "connected");
  const log = await admin.page.locator("#audit-log tbody").textContent();
  assert.match(log, /room_unban/);
  assert.match(log, /room_ban/);
  for (const p of [pest, regular, admin]) await p.context.close();
});
