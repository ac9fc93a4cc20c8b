// A Socket.IO client in the browser (socket.io-client's own browser build)
// and a regular room page chatting in one room.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SHOTS, enterRoom, person, say, serverAndBrowser, waitForMessage } from "./harness.mjs";

const SOCKET_IO = fileURLToPath(new URL("node_modules/socket.io-client/dist/socket.io.min.js", import.meta.url));

let server;
let browser;

serverAndBrowser({ use: (s, b) => ([server, browser] = [s, b]), current: () => [server, browser] });

/// A page of Parlor's origin running socket.io-client. Parlor's pages allow
/// only their own scripts (CSP `script-src 'self'`), so this context
/// bypasses the CSP to load the client from a file, as a third-party web
/// app on the same origin would serve it.
async function socketIoPage(name, room) {
  const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (error) => page.errors.push(String(error)));
  await page.goto(server.url + "/");
  await page.addScriptTag({ path: SOCKET_IO });
  const joined = await page.evaluate(
    async ({ name, room }) => {
      window.received = [];
      window.transports = [];
      // Default transports: long-polling first, then the upgrade.
      const socket = io(location.origin, { auth: { name }, reconnection: false });
      window.sio = socket;
      socket.io.on("open", () => {
        window.transports.push(socket.io.engine.transport.name);
        socket.io.engine.on("upgrade", (t) => window.transports.push(t.name));
      });
      socket.on("message", (message) => window.received.push(message));
      await new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", reject);
      });
      return socket.timeout(5000).emitWithAck("join_room", { room });
    },
    { name, room },
  );
  return { context, page, joined };
}

test("a Socket.IO client in the browser and a room page chat both ways, with the same ids", async () => {
  const room = "sio-browser";
  const alice = await person(browser);
  await enterRoom(alice.page, server.url, "Alice", room);
  const sio = await socketIoPage("Sonia", room);
  try {
    assert.equal(sio.joined.type, "joined");
    assert.deepEqual(sio.joined.members, ["Alice", "Sonia"]);
    await alice.page.waitForFunction(
      () => [...document.querySelectorAll("#member-list li")].map((e) => e.textContent).join() === "Alice (you),Sonia",
    );

    // Socket.IO -> room page: the page shows it under the id the ack gave.
    const sent = await sio.page.evaluate(({ room }) =>
      window.sio.timeout(5000).emitWithAck("send_message", { room, text: "hello from Socket.IO" }), { room });
    assert.equal(sent.type, "message");
    assert.equal(sent.user, "Sonia");
    await waitForMessage(alice.page, "hello from Socket.IO");
    const shown = alice.page.locator("#messages .msg[data-id]", { hasText: "hello from Socket.IO" });
    assert.equal(Number(await shown.getAttribute("data-id")), sent.id);
    assert.match(await shown.textContent(), /Sonia/);

    // Room page -> Socket.IO: the same message, under the page's data-id.
    await say(alice.page, "hello from the room page");
    await waitForMessage(alice.page, "hello from the room page");
    const mine = alice.page.locator("#messages .msg[data-id]", { hasText: "hello from the room page" });
    const pageId = Number(await mine.getAttribute("data-id"));
    await sio.page.waitForFunction(() => window.received.some((m) => m.text === "hello from the room page"));
    const received = await sio.page.evaluate(() => window.received);
    const got = received.find((m) => m.text === "hello from the room page");
    assert.equal(got.id, pageId);
    assert.equal(got.user, "Alice");
    assert.equal(got.room, room);
    assert.ok(!("nonce" in got), "the room page's nonce is its own");
    assert.deepEqual(
      received.map((m) => m.text),
      ["hello from Socket.IO", "hello from the room page"],
      "the Socket.IO page's own message too, in order",
    );

    // It went through polling and ended on a WebSocket.
    await sio.page.waitForFunction(() => window.sio.io.engine.transport.name === "websocket");
    assert.deepEqual(await sio.page.evaluate(() => window.transports), ["polling", "websocket"]);

    await alice.page.screenshot({ path: join(SHOTS, "socketio-room-desktop.png") });
    assert.deepEqual(sio.page.errors, [], "script errors on the Socket.IO page");
  } finally {
    await sio.context.close();
    await alice.context.close();
  }
});
