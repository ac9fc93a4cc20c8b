// A busy room: comings and goings arrive in batches (`presence_batch`), and
// the page's member list and count follow them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { enterRoom, person, serverAndBrowser } from "./harness.mjs";

let server;
let browser;

// Every room with more than one member counts as busy here.
serverAndBrowser({
  server: { args: ["--presence-batch-above", "1"] },
  use: (s, b) => ([server, browser] = [s, b]),
  current: () => [server, browser],
});

const memberList = (page) => page.$$eval("#member-list li", (els) => els.map((e) => e.textContent).join());

test("in a busy room the member list follows batched comings and goings", async () => {
  const alice = await person(browser);
  const bob = await person(browser);
  const carol = await person(browser);
  await enterRoom(alice.page, server.url, "Alice", "busy");
  await enterRoom(bob.page, server.url, "Bob", "busy");
  await enterRoom(carol.page, server.url, "Carol", "busy");

  await alice.page.waitForFunction(() =>
    [...document.querySelectorAll("#member-list li")].map((e) => e.textContent).join() === "Alice (you),Bob,Carol",
  );
  assert.equal(await alice.page.textContent("#toggle-members"), "Members (3)");
  // The notices summarise a batch rather than naming every change.
  const notices = await alice.page.$$eval("#messages .notice", (els) => els.map((e) => e.textContent));
  assert.ok(notices.some((n) => /^\d+ joined$/.test(n)), notices.join(" | "));

  // Carol came into a busy room: her `joined` listed only its first name
  // (one, here), and the batches since add whoever came after; the count
  // is the server's.
  await carol.page.waitForFunction(() =>
    [...document.querySelectorAll("#member-list li")].map((e) => e.textContent).join() === "Alice,Carol (you)",
  );
  assert.equal(await carol.page.textContent("#toggle-members"), "Members (3)");

  await bob.context.close();
  await alice.page.waitForFunction(() =>
    [...document.querySelectorAll("#member-list li")].map((e) => e.textContent).join() === "Alice (you),Carol",
  );
  await carol.page.waitForFunction(() => document.getElementById("toggle-members").textContent === "Members (2)");
  assert.equal(await memberList(carol.page), "Alice,Carol (you)");
});
