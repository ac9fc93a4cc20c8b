// Starts the real Parlor binary on a fresh SQLite file, and Debian's
// Chromium through playwright-core, for the browser tests.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { after, afterEach, before } from "node:test";
import { chromium } from "playwright-core";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const BIN = process.env.PARLOR_BIN || join(ROOT, "target/debug/parlor");
export const SHOTS = join(ROOT, "target/browser-shots");
mkdirSync(SHOTS, { recursive: true });

/// Parlor on `port` (0: a free one) with the log at `db` (default: a new
/// file), and any further flags in `args`. With `captureLog`, every line the
/// server writes, to stderr (its log) or stdout, is kept in `log`, with
/// Parlor's own log at every level (trace) and its libraries' at info, the
/// default; stop() and kill() return once the last line is in.
export async function startServer({ port = 0, db, args = [], captureLog = false } = {}) {
  db ??= join(mkdtempSync(join(tmpdir(), "parlor-browser-")), "parlor.db");
  const child = spawn(
    BIN,
    [
      "--bind", `127.0.0.1:${port}`, "--database-url", `sqlite://${db}`, "--rate-per-sec", "0",
      "--admin-token", ADMIN_TOKEN, ...args,
    ],
    {
      env: { ...process.env, RUST_LOG: captureLog ? "parlor=trace,info" : "info" },
      stdio: ["ignore", captureLog ? "pipe" : "ignore", "pipe"],
    },
  );
  const lines = createInterface({ input: child.stderr });
  const log = [];
  const ended = [once(lines, "close")];
  if (captureLog) {
    lines.on("line", (line) => log.push(line));
    const out = createInterface({ input: child.stdout });
    out.on("line", (line) => log.push(line));
    ended.push(once(out, "close"));
  }
  const exited = async () => {
    await once(child, "exit");
    await Promise.all(ended);
  };
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("Parlor did not start within 10 s")), 10000);
    child.once("exit", (code) => reject(new Error(`Parlor exited with ${code} at start-up`)));
    lines.on("line", (line) => {
      const found = line.match(/listening on (https?:\/\/127\.0\.0\.1:\d+)/);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
  });
  return {
    url,
    port: Number(new URL(url).port),
    db,
    log,
    /// SIGKILL: a crash, no clean stop recorded.
    async kill() {
      if (child.exitCode !== null) return;
      child.kill("SIGKILL");
      await exited();
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      // A graceful stop takes a few seconds at most; never hang the run.
      const killer = setTimeout(() => child.kill("SIGKILL"), 15000);
      await exited();
      clearTimeout(killer);
    },
  };
}

/// `args`: further Chromium flags.
export function launchBrowser({ args = [] } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", ...args],
  });
}

/// Every page made by `person`, so each test file can check after each test
/// that none of them hit a script error.
export const pages = [];

export function expectNoScriptErrors(assert) {
  for (const page of pages.splice(0)) assert.deepEqual(page.errors, [], "script errors on the page");
}

/// What most test files share: one server (`startServer(server)`, then
/// `prepare(server)` if given) and one browser for all their tests, every
/// test checked for script errors, and both stopped at the end.
/// `use(server, browser)` is handed the two once they run; `current()`
/// gives back the pair to stop, since a test may have restarted the server.
/// (A file's own `before` hooks may run alongside this one's: what needs
/// the server goes in `prepare`.)
export function serverAndBrowser({ server: options, prepare, use, current }) {
  before(async () => {
    const server = await startServer(options);
    await prepare?.(server);
    use(server, await launchBrowser());
  });
  afterEach(() => expectNoScriptErrors(assert));
  after(async () => {
    const [server, browser] = current();
    await browser?.close();
    await server?.stop();
  });
}

/// A person: a browser context of their own, with a page that records
/// dialogs and script errors (a hostile name must never cause either), and
/// anything the page's Content-Security-Policy refused (the pages must work
/// within it).
export async function person(browser, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.dialogs = [];
  page.errors = [];
  page.on("dialog", async (dialog) => {
    page.dialogs.push(dialog.message());
    await dialog.dismiss();
  });
  page.on("pageerror", (error) => page.errors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error" && message.text().includes("Content Security Policy")) {
      page.errors.push(message.text());
    }
  });
  pages.push(page);
  return { context, page };
}

/// Through the home page into `room` as `name`, until the room is live.
export async function enterRoom(page, base, name, room) {
  await page.goto(base + "/");
  await page.fill("#name", name);
  await page.fill("#room", room);
  await Promise.all([page.waitForURL(`**/chat/${room}`), page.click("#go")]);
  await connected(page);
}

export const connected = (page, timeout = 10000) =>
  page.waitForFunction(() => document.getElementById("status").textContent === "connected", null, { timeout });

/// Presses "Reconnect now" until the page is connected. The page also
/// retries by itself after a random delay, and hides the button while an
/// attempt is under way, so it is pressed in the page only when it shows.
/// Returns whether it was pressed.
export async function reconnectNow(page) {
  let pressed = false;
  await eventually(async () => {
    const state = await page.evaluate(() => {
      if (document.getElementById("status").textContent === "connected") return "connected";
      const button = document.getElementById("reconnect-now");
      if (button.hidden) return "trying";
      button.click();
      return "pressed";
    });
    pressed ||= state === "pressed";
    return state === "connected";
  }, "the page reconnected");
  return pressed;
}

export async function say(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

export const bodies = (page) => page.$$eval("#messages .msg[data-id] .body", (els) => els.map((e) => e.textContent));
export const ids = (page) => page.$$eval("#messages .msg[data-id]", (els) => els.map((e) => Number(e.dataset.id)));

/// Stands between `page` and the server on its WebSockets to /ws. Every
/// frame the page sends is kept, as text, in `sent`, and passed on; a frame
/// from the server reaches the page unless `intercept(text, deliver)`
/// returns true (it may call `deliver()` later). `close()` ends the latest
/// connection, as a network failure would.
export async function wiretap(page, intercept = () => false) {
  const tap = { sent: [], route: null, close: () => tap.route?.close() };
  await page.routeWebSocket(/\/ws$/, (ws) => {
    tap.route = ws;
    const upstream = ws.connectToServer();
    ws.onMessage((message) => {
      tap.sent.push(String(message));
      upstream.send(message);
    });
    upstream.onMessage((message) => {
      if (!intercept(String(message), () => ws.send(message))) ws.send(message);
    });
  });
  return tap;
}

/// A wiretap on `page` (`holding.tap`) that, while `holding.on`, keeps the
/// server's frames holding any of `words` (any frame, without words) in
/// `holding.held`, as [text, deliver] pairs, instead of delivering them.
export async function holdFrames(page, ...words) {
  const holding = { on: false, held: [], tap: null };
  holding.tap = await wiretap(page, (text, deliver) => {
    const hold = holding.on && (words.length === 0 || words.some((word) => text.includes(word)));
    if (hold) holding.held.push([text, deliver]);
    return hold;
  });
  return holding;
}

/// Waits until one of the `held` frames holds `word`.
export const heldFrame = (held, word, what = `held: ${word}`) =>
  eventually(() => held.some(([text]) => text.includes(word)), what);

/// Delivers the first of the `held` frames that holds `word`.
export function deliverHeld(held, word) {
  const [[, deliver]] = held.splice(held.findIndex(([text]) => text.includes(word)), 1);
  deliver();
}

/// Opens a room page as `name` with everything the server sends held back
/// once the answer to the join is among it, so the page cannot know yet
/// whether the room is encrypted, nor that it joined; `release()` lets it
/// all through, or `held` ([text, deliver] pairs) some of it.
export async function arriveHeld(page, url, name) {
  const holding = await holdFrames(page);
  holding.on = true;
  await page.goto(url);
  await page.waitForSelector("#name-dialog[open]");
  await page.fill("#name-input", name);
  await page.click("#name-form button[type=submit]");
  await heldFrame(holding.held, '"joined"', "the page asked to join, and the answer is held");
  const release = () => {
    holding.on = false;
    for (const [, deliver] of holding.held.splice(0)) deliver();
  };
  return { tap: holding.tap, held: holding.held, release };
}

/// Fails the test if any frame a wiretap kept holds one of `words`.
export function neverSent(tap, ...words) {
  for (const frame of tap.sent) {
    for (const word of words) assert.ok(!frame.includes(word), `plaintext on the wire: ${frame}`);
  }
}

/// Waits until `condition` (which may be async) holds, looking every 50 ms
/// for 10 s, then fails the test with `what`.
export async function eventually(condition, what) {
  for (let i = 0; !(await condition()); i++) {
    assert.ok(i < 200, what);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/// The frames of `type` among those a wiretap kept.
export const sentOfType = (tap, type) => tap.sent.map((m) => JSON.parse(m)).filter((f) => f.type === type);

/// Waits until the page shows a confirmed message with exactly this text.
export const waitForMessage = (page, text, timeout = 10000) =>
  page.waitForFunction(
    (t) => [...document.querySelectorAll("#messages .msg[data-id] .body")].some((e) => e.textContent === t),
    text,
    { timeout },
  );

export const ADMIN_TOKEN = "browser-tests-admin-token";
const botTokens = new Map(); // server URL -> bot token

/// POSTs JSON. `/store_message` goes as a bot, with a token made through the
/// admin API on first use.
export async function post(base, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (path === "/store_message") {
    if (!botTokens.has(base)) {
      const made = await fetch(base + "/admin/bots", {
        method: "POST",
        headers: { ...headers, Authorization: `Bearer ${ADMIN_TOKEN}` },
        body: JSON.stringify({ name: "bot" }),
      });
      botTokens.set(base, (await made.json()).token);
    }
    headers.Authorization = `Bearer ${botTokens.get(base)}`;
  }
  const response = await fetch(base + path, { method: "POST", headers, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/// The admin the console tests log in as, made on `server`'s database the
/// way an operator makes the first one (`parlor admin create`).
export const ADMIN_NAME = "root";
const ADMIN_PASSWORD = "correct horse battery";

export function createAdmin(server) {
  const made = spawnSync(BIN, ["admin", "create", ADMIN_NAME, "--database-url", `sqlite://${server.db}`], {
    input: `${ADMIN_PASSWORD}\n`,
  });
  if (made.status !== 0) throw new Error(`parlor admin create failed: ${made.stderr}`);
}

/// A browser of its own, logged in as that admin.
export async function loggedInAdmin(browser, server, viewport) {
  const admin = await person(browser, viewport);
  await admin.page.goto(server.url + "/login");
  await admin.page.fill("#name", ADMIN_NAME);
  await admin.page.fill("#password", ADMIN_PASSWORD);
  await Promise.all([admin.page.waitForURL(server.url + "/"), admin.page.click("#submit")]);
  return admin;
}
