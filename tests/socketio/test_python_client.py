"""Parlor's /socket.io/ endpoint driven by python-socketio's real client,
with a native WebSocket client (websocket-client) in the same rooms checking
that what the Socket.IO client sent arrived, under the same ids.

Run from the repository root: python3 -m unittest discover -s tests/socketio -v
"""

import json
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
from pathlib import Path

import socketio
import websocket

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("PARLOR_BIN", str(ROOT / "target/debug/parlor"))
ACK_SECS = 5


def until(check, what, timeout=5.0):
    """Waits until check() is truthy and returns it; fails naming what."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Parlor:
    """The real binary on a fresh SQLite file, as tests/browser/harness.mjs
    starts it, on a port of its own choosing."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="parlor-socketio-py-")
        self.process = subprocess.Popen(
            [
                BIN,
                "--bind", "127.0.0.1:0",
                "--database-url", f"sqlite://{self.dir}/parlor.db",
                "--rate-per-sec", "0",
                "--admin-token", "x",
            ],
            env={**os.environ, "RUST_LOG": "info"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines = queue.Queue()

        # The log must keep being read, or the server blocks writing it.
        def drain():
            for line in self.process.stderr:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.monotonic() + 10
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise RuntimeError("Parlor did not start within 10 s")
            if line is None:
                raise RuntimeError(f"Parlor exited with {self.process.wait()} at start-up")
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if found:
                self.url = found.group(1)
                break

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class Native:
    """A client of the native JSON protocol on /ws (docs/protocol.md)."""

    def __init__(self, base):
        self.ws = websocket.create_connection(base.replace("http", "ws", 1) + "/ws", timeout=5)
        self.frames = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while True:
                text = self.ws.recv()
                if not text:
                    return
                with self.lock:
                    self.frames.append(json.loads(text))
        except (websocket.WebSocketException, OSError):
            return

    def send(self, **frame):
        self.ws.send(json.dumps(frame))

    def frame(self, matches, what):
        """The first frame, received so far or later, that matches."""

        def find():
            with self.lock:
                return next((f for f in self.frames if matches(f)), None)

        return until(find, what)

    def messages(self, room):
        with self.lock:
            return [f for f in self.frames if f["type"] == "message" and f["room"] == room]

    def join(self, room, name):
        self.send(type="join_room", room=room, name=name)
        return self.frame(lambda f: f["type"] == "joined" and f["room"] == room, f"native joined {room}")

    def say(self, room, text):
        """Sends and waits for its own copy: stored, with its id."""
        nonce = f"native-{text}"
        self.send(type="send_message", room=room, text=text, nonce=nonce)
        return self.frame(lambda f: f["type"] == "message" and f.get("nonce") == nonce, f"native copy of {text}")

    def close(self):
        self.ws.close()


def view(messages):
    return [(m["id"], m["user"], m["text"]) for m in messages]


class SocketIoClientTests:
    """The same behaviour on each way of starting; subclasses say which."""

    transports = None  # python-socketio's default: polling, then the upgrade
    rooms = 0

    @classmethod
    def setUpClass(cls):
        cls.server = Parlor()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.closers = []

    def tearDown(self):
        for close in reversed(self.closers):
            close()

    def room(self, what):
        SocketIoClientTests.rooms += 1
        return f"{what}-py-{SocketIoClientTests.rooms}"

    def connect(self, name=None, **options):
        """A connected python-socketio client that keeps every event it gets."""
        sio = socketio.Client(reconnection=options.pop("reconnection", False), **options)
        sio.received = []
        sio.on("*", lambda event, *args: sio.received.append((event, *args)))
        sio.connect(
            self.server.url,
            auth={"name": name} if name else None,
            transports=self.transports,
            wait_timeout=5,
        )
        self.closers.append(sio.disconnect)
        return sio

    def native(self):
        native = Native(self.server.url)
        self.closers.append(native.close)
        return native

    @staticmethod
    def messages(sio, room):
        return [args[0] for event, *args in list(sio.received) if event == "message" and args[0]["room"] == room]

    def test_chat_with_a_native_client_both_ways_with_the_same_ids(self):
        room = self.room("duo")
        sio = self.connect("pia")
        native = self.native()
        joined = sio.call("join_room", {"room": room}, timeout=ACK_SECS)
        self.assertEqual(joined["type"], "joined")
        self.assertEqual(joined["members"], ["pia"], "auth's name is used when the join names no one")
        native.join(room, "nat")

        for i in range(1, 4):
            sio.emit("send_message", {"room": room, "text": f"from python {i}"})
            native.send(type="send_message", room=room, text=f"from native {i}")
        until(lambda: len(self.messages(sio, room)) == 6, "6 messages at the Socket.IO client")
        until(lambda: len(native.messages(room)) == 6, "6 messages at the native client")
        seen = view(self.messages(sio, room))
        self.assertEqual(view(native.messages(room)), seen, "same messages, ids and order on both")
        ids = [m[0] for m in seen]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual([t for _, u, t in seen if u == "pia"], [f"from python {i}" for i in range(1, 4)])
        self.assertEqual([t for _, u, t in seen if u == "nat"], [f"from native {i}" for i in range(1, 4)])
        self.assertEqual(sio.transport(), "polling" if self.transports == ["polling"] else "websocket")

    def test_call_answers_with_the_native_frame(self):
        room = self.room("acks")
        sio = self.connect()
        native = self.native()
        # `username` is taken for `name`, `message` for `text`.
        joined = sio.call("join_room", {"room": room, "username": "ackley"}, timeout=ACK_SECS)
        self.assertEqual(joined["type"], "joined")
        self.assertEqual(joined["members"], ["ackley"])
        self.assertIsInstance(joined["epoch"], str)
        native.join(room, "nat")

        stored = sio.call("send_message", {"room": room, "message": "acked"}, timeout=ACK_SECS)
        self.assertEqual(stored["type"], "message")
        self.assertEqual((stored["room"], stored["user"], stored["text"]), (room, "ackley", "acked"))
        self.assertTrue(stored["nonce"].startswith("sio-"), "a nonce the server made for the callback")
        arrived = native.frame(lambda f: f["type"] == "message" and f["text"] == "acked", "the acked message")
        self.assertEqual(arrived["id"], stored["id"])
        self.assertNotIn("nonce", arrived, "other members never see a sender's nonce")
        own = sio.call("send_message", {"room": room, "text": "mine", "nonce": "py-1"}, timeout=ACK_SECS)
        self.assertEqual((own["nonce"], own["id"]), ("py-1", stored["id"] + 1))

        history = sio.call("history", {"room": room}, timeout=ACK_SECS)
        self.assertEqual(history["type"], "history")
        self.assertEqual([m["id"] for m in history["messages"]], [stored["id"], own["id"]])
        self.assertEqual(sio.call("ping", timeout=ACK_SECS), {"type": "pong"})
        self.assertIsNone(sio.call("typing", {"room": room}, timeout=ACK_SECS), "typing acks with nothing")
        self.assertEqual(sio.call("leave_room", {"room": room}, timeout=ACK_SECS), {"type": "left", "room": room})
        # Replies for the asker went to the callbacks only.
        self.assertEqual(sio.call("ping", timeout=ACK_SECS), {"type": "pong"})
        events = {event for event, *_ in list(sio.received)}
        self.assertFalse(events & {"joined", "history", "pong", "left", "error"}, events)

    def test_bad_input_gets_an_error_and_the_connection_goes_on(self):
        room = self.room("errors")
        sio = self.connect("erik")
        refused = sio.call("send_message", {"room": room, "text": "not in", "nonce": "py-x"}, timeout=ACK_SECS)
        self.assertEqual(
            (refused["type"], refused["code"], refused["room"], refused["nonce"]),
            ("error", "not_joined", room, "py-x"),
        )
        sio.call("join_room", {"room": room}, timeout=ACK_SECS)
        blank = sio.call("send_message", {"room": room, "text": "   ", "nonce": "py-blank"}, timeout=ACK_SECS)
        self.assertEqual((blank["code"], blank["nonce"]), ("bad_request", "py-blank"))
        unknown = sio.call("shout", {"room": room}, timeout=ACK_SECS)
        self.assertEqual((unknown["type"], unknown["code"]), ("error", "bad_request"))
        bad_room = sio.call("join_room", {"room": "Not A Room"}, timeout=ACK_SECS)
        self.assertEqual(bad_room["code"], "invalid_room")

        # Without a callback, an `error` event.
        sio.emit("send_message", {"room": "elsewhere", "text": "x", "nonce": "py-ev"})
        error = until(
            lambda: next((a[0] for e, *a in list(sio.received) if e == "error"), None), "an error event"
        )
        self.assertEqual((error["code"], error["nonce"]), ("not_joined", "py-ev"))
        ok = sio.call("send_message", {"room": room, "text": "still here"}, timeout=ACK_SECS)
        self.assertEqual(ok["type"], "message")

        # Only the default namespace exists.
        refusals = []
        other = socketio.Client(reconnection=False)
        other.on("connect_error", lambda data: refusals.append(data), namespace="/admin")
        with self.assertRaises(socketio.exceptions.ConnectionError):
            other.connect(self.server.url, namespaces=["/admin"], transports=self.transports, wait_timeout=5)
        other.disconnect()
        self.assertEqual(refusals, [{"message": "Invalid namespace"}])

    def drop(self, sio):
        """Ends the connection under the client as a network failure would,
        so that it reconnects on its own; polling-only: a reconnect by hand."""
        if sio.transport() == "websocket":
            sio.eio.ws.close()
        else:
            sio.disconnect()

    def test_reconnect_recovers_the_gap_with_since_and_epoch(self):
        room = self.room("gap")
        native = self.native()
        connects = []
        sio = socketio.Client(
            reconnection=True, reconnection_delay=0.2, reconnection_delay_max=0.2, randomization_factor=0
        )
        sio.received = []
        sio.on("*", lambda event, *args: sio.received.append((event, *args)))
        sio.on("connect", lambda: connects.append(time.monotonic()))
        sio.connect(self.server.url, auth={"name": "rex"}, transports=self.transports, wait_timeout=5)
        self.closers.append(sio.disconnect)

        native.join(room, "nat")
        first = sio.call("join_room", {"room": room}, timeout=ACK_SECS)
        sio.call("send_message", {"room": room, "text": "before"}, timeout=ACK_SECS)
        native.say(room, "native before")
        until(lambda: len(self.messages(sio, room)) == 2, "both messages before the drop")
        # What a client keeps to recover: the last id it saw, and the epoch.
        last_seen = self.messages(sio, room)[-1]["id"]

        self.drop(sio)
        native.frame(lambda f: f["type"] == "presence" and f["user"] == "rex" and f["action"] == "leave", "rex left")
        missed = [native.say(room, f"missed {i}") for i in range(1, 4)]
        if self.transports == ["polling"]:
            sio.connect(self.server.url, auth={"name": "rex"}, transports=self.transports, wait_timeout=5)
        until(lambda: len(connects) == 2 and sio.connected, "the reconnection")

        recovered = sio.call("join_room", {"room": room, "since": last_seen, "epoch": first["epoch"]}, timeout=ACK_SECS)
        self.assertEqual(recovered["type"], "joined")
        self.assertEqual(recovered["epoch"], first["epoch"])
        self.assertFalse(recovered["truncated"])
        self.assertEqual(view(recovered["history"]), view(missed), "exactly the missed messages, same ids")
        self.assertEqual(len(self.messages(sio, room)), 2, "none of the gap came live")

        back = sio.call("send_message", {"room": room, "text": "back"}, timeout=ACK_SECS)
        self.assertEqual(back["id"], missed[-1]["id"] + 1)
        seen = native.frame(lambda f: f["type"] == "message" and f["text"] == "back", "back")
        self.assertEqual(seen["id"], back["id"])


class DefaultTransports(SocketIoClientTests, unittest.TestCase):
    """Long-polling first, then the upgrade to WebSocket."""

    transports = None

    def test_the_client_starts_on_polling_and_upgrades(self):
        sio = socketio.Client(reconnection=False)
        # Notes the transport the engine opened on, then lets the Socket.IO
        # client handle the opening as usual.
        opened_on = []
        handle_open = sio.eio.handlers["connect"]

        def spy():
            opened_on.append(sio.eio.current_transport)
            return handle_open()

        sio.eio.on("connect", spy)
        sio.connect(self.server.url, auth={"name": "upton"}, wait_timeout=5)
        self.closers.append(sio.disconnect)
        self.assertEqual(opened_on, ["polling"])
        self.assertEqual(sio.eio.upgrades, ["websocket"], "the open packet offers the upgrade")
        until(lambda: sio.transport() == "websocket", "the upgrade")
        # Chat goes on over the WebSocket.
        room = self.room("upgraded")
        native = self.native()
        sio.call("join_room", {"room": room}, timeout=ACK_SECS)
        native.join(room, "nat")
        sent = sio.call("send_message", {"room": room, "text": "over the websocket"}, timeout=ACK_SECS)
        arrived = native.frame(lambda f: f["type"] == "message" and f["text"] == "over the websocket", "it")
        self.assertEqual(arrived["id"], sent["id"])


class PollingOnly(SocketIoClientTests, unittest.TestCase):
    transports = ["polling"]


if __name__ == "__main__":
    unittest.main()
