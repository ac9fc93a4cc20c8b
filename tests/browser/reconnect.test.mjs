// The connection's life: the server goes away while two people chat.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { bodies, connected, enterRoom, ids, launchBrowser, person, post, say, startServer, waitForMessage } from "./harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("after a server restart both pages reconnect on their own and have every message once", async () => {
  const alice = await person(browser);
  const bob = await person(browser);
  await enterRoom(alice.page, server.url, "Alice", "resilient");
  await enterRoom(bob.page, server.url, "Bob", "resilient");
  await say(alice.page, "before 1");
  await say(bob.page, "before 2");
  await waitForMessage(alice.page, "before 2");
  await waitForMessage(bob.page, "before 1");

  const { port, db } = server;
  await server.stop();
  for (const { page } of [alice, bob]) {
    await page.waitForFunction(() => document.getElementById("status").classList.contains("offline"));
    assert.equal(await page.isDisabled("#text"), true, "the composer is off while disconnected");
    assert.match(await page.textContent("#composer-note"), /can't send/);
  }

  server = await startServer({ port, db });
  // Sent while the pages are still waiting to reconnect: they must fill the gap.
  await post(server.url, "/store_message", { room: "resilient", user: "bot", text: "while you were away" });
  for (const { page } of [alice, bob]) await connected(page, 30000);
  await say(alice.page, "after 1");
  await say(bob.page, "after 2");

  const expected = ["before 1", "before 2", "while you were away", "after 1", "after 2"];
  for (const { page } of [alice, bob]) {
    await waitForMessage(page, "after 1");
    await waitForMessage(page, "after 2");
    assert.deepEqual(await bodies(page), expected);
    const seen = await ids(page);
    assert.deepEqual(seen, [1, 2, 3, 4, 5], "every message once, in order");
    assert.equal(await page.locator("#messages .msg.pending").count(), 0);
  }
  await alice.context.close();
  await bob.context.close();
});

test("a message typed while disconnected cannot be lost silently", async () => {
  const { context, page } = await person(browser);
  await enterRoom(page, server.url, "Lee", "pending");
  await say(page, "confirmed");
  await waitForMessage(page, "confirmed");
  const { port, db } = server;
  await server.stop();
  await page.waitForFunction(() => document.getElementById("status").classList.contains("offline"));
  server = await startServer({ port, db });
  await connected(page, 30000);
  await say(page, "after the gap");
  await waitForMessage(page, "after the gap");
  assert.deepEqual(await bodies(page), ["confirmed", "after the gap"]);
  await context.close();
});
