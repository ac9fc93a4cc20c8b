// Parlor's /socket.io/ endpoint driven by the real socket.io-client, with a
// native WebSocket client in the same rooms checking that what the Socket.IO
// client sent arrived, under the same ids.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { io } from "socket.io-client";
import WebSocket from "ws";
import { startServer } from "../browser/harness.mjs";

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

// Every test stays well under 10 s; a hang fails it instead of the run.
const LIMIT = { timeout: 10000 };
const ACK_MS = 3000;

let rooms = 0;
/// A room of the test's own, so tests share the server and nothing else.
const freshRoom = (what) => `${what}-${process.pid}-${++rooms}`;

/// Waits until `check()` holds, polling; fails naming `what` after `ms`.
async function until(check, what, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/// A Socket.IO client, connected to the default namespace. It keeps every
/// event it receives (`events`), and the transport its engine opened on
/// (`firstTransport`), since a fast upgrade can finish before `connect`.
async function connectSocketIo(base, options = {}) {
  const socket = io(base, {
    // Each client its own Manager (and engine), as separate programs have.
    forceNew: true,
    reconnection: false,
    timeout: 5000,
    ...options,
  });
  socket.events = [];
  socket.onAny((event, ...args) => socket.events.push([event, ...args]));
  socket.transports = [];
  socket.io.on("open", () => {
    socket.transports.push(socket.io.engine.transport.name);
    socket.io.engine.on("upgrade", (transport) => socket.transports.push(transport.name));
  });
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no connect within 5 s")), 5000);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once("connect_error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  } catch (error) {
    socket.close();
    throw error;
  }
  return socket;
}

/// The `message` events of `room` a Socket.IO client received, in order.
const sioMessages = (socket, room) =>
  socket.events.filter(([event, frame]) => event === "message" && frame.room === room).map(([, frame]) => frame);

/// A native client of the JSON protocol on /ws (docs/protocol.md).
async function connectNative(base) {
  const ws = new WebSocket(base.replace(/^http/, "ws") + "/ws");
  const frames = [];
  ws.on("message", (data) => frames.push(JSON.parse(String(data))));
  await once(ws, "open");
  const native = {
    frames,
    send: (frame) => ws.send(JSON.stringify(frame)),
    /// The first frame (received so far or later) that `matches`.
    frame: (matches, what) => until(() => frames.find(matches), what),
    messages: (room) => frames.filter((f) => f.type === "message" && f.room === room),
    async join(room, name) {
      native.send({ type: "join_room", room, name });
      return native.frame((f) => f.type === "joined" && f.room === room, `native joined ${room}`);
    },
    /// Sends and waits for its own copy: the message is stored and has its id.
    async say(room, text) {
      const nonce = `native-${text}`;
      native.send({ type: "send_message", room, text, nonce });
      return native.frame((f) => f.type === "message" && f.nonce === nonce, `native copy of ${text}`);
    },
    close: () => ws.close(),
  };
  return native;
}

const view = (messages) => messages.map(({ id, user, text }) => ({ id, user, text }));

/// Signs an account up through the form, as a browser does (the CSRF cookie
/// of the form page and its token), and returns its login cookie.
async function signUp(base, name, password) {
  const form = await fetch(base + "/signup");
  const csrfCookie = form.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .find((c) => c.startsWith("parlor_csrf="));
  const token = (await form.text()).match(/name="csrf" value="([^"]+)"/)[1];
  const done = await fetch(base + "/signup", {
    method: "POST",
    redirect: "manual",
    headers: { cookie: csrfCookie, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ name, password, csrf: token }),
  });
  assert.equal(done.status, 303, "signed up");
  const login = done.headers
    .getSetCookie()
    .map((c) => c.split(";")[0])
    .find((c) => c.startsWith("parlor_auth="));
  assert.ok(login, "a login cookie");
  return login;
}

/// Each behaviour is checked on both ways a client starts: Socket.IO's
/// default (long-polling, then the upgrade to WebSocket) and WebSocket only.
const MODES = [
  { label: "default transports", options: {}, first: "polling" },
  { label: "websocket only", options: { transports: ["websocket"] }, first: "websocket" },
];

for (const mode of MODES) {
  describe(mode.label, () => {
    const connect = (options = {}) => connectSocketIo(server.url, { ...mode.options, ...options });

    test("a Socket.IO client and a native client chat both ways, seeing the same ids in the same order", LIMIT, async () => {
      const room = freshRoom("duo");
      const sio = await connect({ auth: { name: "sam" } });
      const native = await connectNative(server.url);
      try {
        // `auth.name` names the Socket.IO client when its join gives none.
        const joined = await sio.timeout(ACK_MS).emitWithAck("join_room", { room });
        assert.equal(joined.type, "joined");
        assert.deepEqual(joined.members, ["sam"]);
        const nativeJoined = await native.join(room, "nat");
        assert.deepEqual(nativeJoined.members, ["nat", "sam"]);
        await until(
          () => sio.events.some(([e, f]) => e === "presence" && f.user === "nat" && f.action === "join"),
          "the Socket.IO client told of the native join",
        );

        // Interleaved, without waiting for each other (and, with the default
        // transports, across the upgrade).
        for (let i = 1; i <= 4; i++) {
          sio.emit("send_message", { room, text: `from sio ${i}`, nonce: `sam-${i}` });
          native.send({ type: "send_message", room, text: `from native ${i}` });
        }
        await until(() => sioMessages(sio, room).length === 8, "8 messages at the Socket.IO client");
        await until(() => native.messages(room).length === 8, "8 messages at the native client");
        const seenBySio = view(sioMessages(sio, room));
        assert.deepEqual(view(native.messages(room)), seenBySio, "the same messages, ids and order on both");
        const ids = seenBySio.map((m) => m.id);
        assert.deepEqual([...ids].sort((a, b) => a - b), ids, "ids increase in the order received");
        assert.equal(new Set(ids).size, 8);
        assert.deepEqual(
          seenBySio.filter((m) => m.user === "sam").map((m) => m.text),
          ["from sio 1", "from sio 2", "from sio 3", "from sio 4"],
        );
        assert.deepEqual(
          seenBySio.filter((m) => m.user === "nat").map((m) => m.text),
          ["from native 1", "from native 2", "from native 3", "from native 4"],
        );
        // The sender's own copies carry its nonces; other members never see them.
        assert.deepEqual(
          sioMessages(sio, room).filter((m) => m.user === "sam").map((m) => m.nonce),
          ["sam-1", "sam-2", "sam-3", "sam-4"],
        );
        assert.ok(native.messages(room).every((m) => !("nonce" in m)));

        // The transports the client went through.
        await until(() => sio.io.engine.transport.name === "websocket", "the upgrade to WebSocket");
        assert.equal(sio.transports[0], mode.first, `opened on ${mode.first}`);
        assert.equal(sio.transports.at(-1), "websocket");
        assert.equal(sio.io.engine.transport.name, "websocket");
      } finally {
        sio.close();
        native.close();
      }
    });

    test("acks answer with the native frame, type included; replies for the asker go to the ack only", LIMIT, async () => {
      const room = freshRoom("acks");
      const sio = await connect();
      try {
        // `username` is taken for `name`, `message` for `text`.
        const joined = await sio.timeout(ACK_MS).emitWithAck("join_room", { room, username: "ackie" });
        assert.equal(joined.type, "joined");
        assert.equal(joined.room, room);
        assert.deepEqual(joined.members, ["ackie"]);
        assert.equal(joined.member_count, 1);
        assert.deepEqual(joined.history, []);
        assert.equal(joined.truncated, false);
        assert.equal(typeof joined.epoch, "string");

        // Without a nonce the server makes one, so the ack can be matched.
        const stored = await sio.timeout(ACK_MS).emitWithAck("send_message", { room, message: "acked hello" });
        assert.equal(stored.type, "message");
        assert.equal(stored.room, room);
        assert.equal(stored.user, "ackie");
        assert.equal(stored.text, "acked hello");
        assert.ok(Number.isInteger(stored.id) && stored.id > 0);
        assert.match(stored.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.match(stored.nonce, /^sio-/);
        const withNonce = await sio.timeout(ACK_MS).emitWithAck("send_message", { room, text: "second", nonce: "n-2" });
        assert.equal(withNonce.nonce, "n-2");
        assert.equal(withNonce.id, stored.id + 1);

        // A room event: the sender's event stream has it too, nonce and all.
        await until(() => sioMessages(sio, room).length === 2, "both messages as events as well");
        const asEvents = [stored, withNonce].map(({ type, ...frame }) => frame);
        assert.deepEqual(sioMessages(sio, room), asEvents);

        // Stored for real: the history API has both.
        const page = await (await fetch(`${server.url}/api/rooms/${room}/messages`)).json();
        assert.deepEqual(
          page.messages.map(({ id, text }) => ({ id, text })),
          [
            { id: withNonce.id, text: "second" },
            { id: stored.id, text: "acked hello" },
          ],
        );
        assert.equal(page.epoch, joined.epoch);

        const history = await sio.timeout(ACK_MS).emitWithAck("history", { room, limit: 1 });
        assert.equal(history.type, "history");
        assert.deepEqual(history.messages.map((m) => m.id), [withNonce.id]);
        assert.deepEqual(await sio.timeout(ACK_MS).emitWithAck("ping"), { type: "pong" });
        // `typing` is answered at once, with nothing.
        const typingArgs = await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("no typing ack")), ACK_MS);
          sio.emit("typing", { room }, (...args) => {
            clearTimeout(timer);
            resolve(args);
          });
        });
        assert.deepEqual(typingArgs, []);
        assert.deepEqual(await sio.timeout(ACK_MS).emitWithAck("leave_room", { room }), { type: "left", room });

        // An event after the acks have all come back: had any reply also
        // gone out as an event, it would be here by now.
        assert.deepEqual(await sio.timeout(ACK_MS).emitWithAck("ping"), { type: "pong" });
        const names = sio.events.map(([event]) => event);
        for (const askerOnly of ["joined", "history", "pong", "left", "error"]) {
          assert.ok(!names.includes(askerOnly), `no ${askerOnly} event when a callback took it`);
        }
      } finally {
        sio.close();
      }
    });

    test("errors: not_joined with the nonce, unknown events, a bad namespace and bad auth", LIMIT, async () => {
      const room = freshRoom("errors");
      const sio = await connect({ auth: { name: "erin" } });
      try {
        const refused = await sio
          .timeout(ACK_MS)
          .emitWithAck("send_message", { room, text: "not in it", nonce: "n-refused" });
        assert.equal(refused.type, "error");
        assert.equal(refused.code, "not_joined");
        assert.equal(refused.room, room);
        assert.equal(refused.nonce, "n-refused");
        assert.equal(typeof refused.message, "string");

        // Without a callback the same error comes as an `error` event. (An
        // unknown event is refused before it reaches the session, so its
        // error may come first, as a native client's unknown frame's does.)
        sio.emit("send_message", { room, text: "still not", nonce: "n-event" });
        sio.emit("shout", { room });
        await until(() => sio.events.filter(([e]) => e === "error").length === 2, "two error events");
        const errors = sio.events.filter(([e]) => e === "error").map(([, frame]) => frame);
        const notJoined = errors.find((f) => f.code === "not_joined");
        const unknown = errors.find((f) => f.code === "bad_request");
        assert.deepEqual(
          [notJoined.code, notJoined.room, notJoined.nonce, notJoined.type],
          ["not_joined", room, "n-event", undefined],
        );
        assert.equal(unknown.code, "bad_request");
        assert.match(unknown.message, /shout/);
        // ...and with a callback, as its answer.
        const unknownAcked = await sio.timeout(ACK_MS).emitWithAck("shout", { room });
        assert.equal(unknownAcked.type, "error");
        assert.equal(unknownAcked.code, "bad_request");
        // A command's argument must be an object.
        const notObject = await sio.timeout(ACK_MS).emitWithAck("send_message", "hi");
        assert.equal(notObject.code, "bad_request");

        // After all that, the connection still works.
        const joined = await sio.timeout(ACK_MS).emitWithAck("join_room", { room });
        assert.deepEqual(joined.members, ["erin"]);
        const sent = await sio.timeout(ACK_MS).emitWithAck("send_message", { room, text: "now in", nonce: "n-ok" });
        assert.equal(sent.type, "message");
        assert.equal(sent.nonce, "n-ok");
      } finally {
        sio.close();
      }

      // Only the default namespace exists.
      await assert.rejects(connectSocketIo(server.url + "/admin", mode.options), (error) => {
        assert.equal(error.message, "Invalid namespace");
        return true;
      });
      // `auth` must be an object, and its name a string.
      await assert.rejects(connect({ auth: ["sam"] }), /`auth` must be an object/);
      await assert.rejects(connect({ auth: { name: 7 } }), /`auth.name` must be a string/);
    });

    test("after the connection drops, join_room with since and epoch brings exactly the messages of the gap", LIMIT, async () => {
      const room = freshRoom("gap");
      const native = await connectNative(server.url);
      const sio = await connect({
        auth: { name: "rey" },
        reconnection: true,
        reconnectionDelay: 200,
        reconnectionDelayMax: 200,
        randomizationFactor: 0,
      });
      try {
        await native.join(room, "nat");
        const first = await sio.timeout(ACK_MS).emitWithAck("join_room", { room });
        const before = await sio.timeout(ACK_MS).emitWithAck("send_message", { room, text: "before the drop" });
        await native.say(room, "native before");
        await until(() => sioMessages(sio, room).length === 2, "both messages before the drop");
        // What a client keeps to recover: the last id it saw, and the epoch.
        const lastSeen = sioMessages(sio, room).at(-1).id;
        const epoch = first.epoch;

        // The app's own rejoin on every (re)connection; it waits for the
        // test to say the gap is over so that the missed messages are
        // certainly missed, not received live.
        let gapOver;
        const gap = new Promise((resolve) => (gapOver = resolve));
        const rejoined = new Promise((resolve, reject) => {
          sio.once("connect", async () => {
            await gap;
            try {
              resolve(await sio.timeout(ACK_MS).emitWithAck("join_room", { room, since: lastSeen, epoch }));
            } catch (error) {
              reject(error);
            }
          });
        });

        // Drop the transport under the client, as a network failure does.
        const dropped = once(sio, "disconnect");
        sio.io.engine.close();
        await dropped;
        // The server notices the Socket.IO member left...
        await native.frame((f) => f.type === "presence" && f.user === "rey" && f.action === "leave", "rey left");
        // ...and the room goes on without it.
        const missed = [];
        for (let i = 1; i <= 3; i++) missed.push(await native.say(room, `missed ${i}`));
        gapOver();

        const recovered = await rejoined;
        assert.equal(recovered.type, "joined");
        assert.equal(recovered.epoch, epoch, "the same run of ids");
        assert.equal(recovered.truncated, false);
        assert.deepEqual(view(recovered.history), view(missed), "exactly the missed messages, same ids, in order");
        assert.ok(recovered.history.every((m) => m.id > before.id));
        assert.equal(sioMessages(sio, room).length, 2, "none of the gap's messages came live");

        // Live again, both ways.
        const afterDrop = await sio.timeout(ACK_MS).emitWithAck("send_message", { room, text: "back again" });
        const seen = await native.frame((f) => f.type === "message" && f.text === "back again", "back again");
        assert.equal(seen.id, afterDrop.id);
        assert.equal(afterDrop.id, missed.at(-1).id + 1);
        const reply = await native.say(room, "welcome back");
        await until(() => sioMessages(sio, room).some((m) => m.id === reply.id), "the native reply, live");
      } finally {
        sio.close();
        native.close();
      }
    });

    test("a login cookie makes joins use the account's name, whatever name is asked", LIMIT, async () => {
      const room = freshRoom("account");
      const account = `acct${mode.first}${rooms}`;
      const cookie = await signUp(server.url, account, "correct horse battery");
      const sio = await connect({ auth: { name: "impostor" }, extraHeaders: { cookie } });
      const native = await connectNative(server.url);
      try {
        const joined = await sio.timeout(ACK_MS).emitWithAck("join_room", { room, name: "someone-else" });
        assert.equal(joined.type, "joined");
        assert.deepEqual(joined.members, [account]);
        await native.join(room, "nat");
        const sent = await sio.timeout(ACK_MS).emitWithAck("send_message", { room, text: "signed, the account" });
        assert.equal(sent.user, account);
        const seen = await native.frame((f) => f.type === "message" && f.text === "signed, the account", "the message");
        assert.deepEqual(view([seen]), view([sent]));
        // The account stays logged in across the upgrade.
        await until(() => sio.io.engine.transport.name === "websocket", "WebSocket");
        const later = await sio.timeout(ACK_MS).emitWithAck("send_message", { room, text: "still me" });
        assert.equal(later.user, account);
      } finally {
        sio.close();
        native.close();
      }

      // A guest may not take a registered name.
      const guest = await connect();
      try {
        const refused = await guest.timeout(ACK_MS).emitWithAck("join_room", { room, name: account });
        assert.equal(refused.type, "error");
        assert.equal(refused.code, "invalid_name");
        assert.equal(refused.room, room);
      } finally {
        guest.close();
      }
    });
  });
}

test("a polling-only client chats with a native client, same ids both ways, and never upgrades", LIMIT, async () => {
  const room = freshRoom("polling");
  const sio = await connectSocketIo(server.url, { transports: ["polling"], auth: { username: "pol" } });
  const native = await connectNative(server.url);
  try {
    const joined = await sio.timeout(ACK_MS).emitWithAck("join_room", { room });
    assert.deepEqual(joined.members, ["pol"]);
    await native.join(room, "nat");
    const sent = [];
    for (let i = 1; i <= 3; i++) {
      sent.push(await sio.timeout(ACK_MS).emitWithAck("send_message", { room, text: `polled ${i}` }));
      await native.say(room, `native ${i}`);
    }
    await until(() => native.messages(room).length === 6, "6 messages at the native client");
    await until(() => sioMessages(sio, room).length === 6, "6 messages at the polling client");
    assert.deepEqual(view(sioMessages(sio, room)), view(native.messages(room)));
    assert.deepEqual(
      view(native.messages(room).filter((m) => m.user === "pol")),
      view(sent),
      "what the polling client sent arrived as acked",
    );
    // Many events at once reach a polling client in one GET or a few, in order.
    for (let i = 1; i <= 20; i++) native.send({ type: "send_message", room, text: `burst ${i}` });
    await until(() => sioMessages(sio, room).length === 26, "the burst at the polling client");
    assert.deepEqual(
      sioMessages(sio, room).slice(6).map((m) => m.text),
      Array.from({ length: 20 }, (_, i) => `burst ${i + 1}`),
    );
    assert.deepEqual(sio.transports, ["polling"]);
    assert.equal(sio.io.engine.transport.name, "polling");
  } finally {
    sio.close();
    native.close();
  }
});

// socket.io-client batches whatever a polling client emitted while a POST
// was in flight into the next POST, bounded by bytes (the open packet's
// maxPayload), not by count: a body of hundreds of packets is ordinary.
test(
  "a polling client that emits 300 messages at once has them all delivered",
  LIMIT,
  async () => {
    const room = freshRoom("burst");
    const sio = await connectSocketIo(server.url, { transports: ["polling"], auth: { name: "bursty" } });
    try {
      await sio.timeout(ACK_MS).emitWithAck("join_room", { room });
      const dropped = [];
      sio.on("disconnect", (reason) => dropped.push(reason));
      for (let i = 1; i <= 300; i++) sio.emit("send_message", { room, text: `burst ${i}` });
      await until(() => dropped.length > 0 || sioMessages(sio, room).length === 300, "the burst", 5000);
      assert.deepEqual(dropped, [], "the client stayed connected");
      assert.deepEqual(
        sioMessages(sio, room).map((m) => m.text),
        Array.from({ length: 300 }, (_, i) => `burst ${i + 1}`),
      );
    } finally {
      sio.close();
    }
  },
);
