// Formatted message texts, @mentions, unread counts and mention
// notifications on the room page (static/format.js, static/room-alerts.js),
// driven in headless Chromium against the real server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { SHOTS, connected, enterRoom, person, post, say, serverAndBrowser, waitForMessage } from "./harness.mjs";

let server;
let browser;

serverAndBrowser({ use: (s, b) => ([server, browser] = [s, b]), current: () => [server, browser] });

// ---- helpers -------------------------------------------------------------------

const RELS = "noopener noreferrer nofollow";

/// Waits until the page shows `n` confirmed messages.
const waitForCount = (page, n) =>
  page.waitForFunction((want) => document.querySelectorAll("#messages .msg[data-id]").length === want, n);

/// What each confirmed message's body is made of.
const shapes = (page) =>
  page.$$eval("#messages .msg[data-id] .body", (els) =>
    els.map((body) => {
      const texts = (selector) => [...body.querySelectorAll(selector)].map((e) => e.textContent);
      return {
        text: body.textContent,
        tags: [...body.querySelectorAll("*")].map((e) => e.tagName.toLowerCase()),
        strong: texts("strong"),
        em: texts("em"),
        code: texts(":not(pre) > code"),
        pre: texts("pre > code"),
        links: [...body.querySelectorAll("a")].map((a) => [a.getAttribute("href"), a.textContent, a.rel, a.target]),
      };
    }),
  );

/// Whether each confirmed message mentions this reader: [text, the message
/// marked, the text of its `.mention.me` and `.mention:not(.me)` spans].
const mentions = (page) =>
  page.$$eval("#messages .msg[data-id]", (els) =>
    els.map((el) => [
      el.querySelector(".body").textContent,
      el.classList.contains("mentions-me"),
      [...el.querySelectorAll(".mention.me")].map((e) => e.textContent),
      [...el.querySelectorAll(".mention:not(.me)")].map((e) => e.textContent),
    ]),
  );

/// A person whose browser grants notifications and records each one made
/// (and calls to window.focus) instead of showing it. With sessionStorage's
/// `start-hidden`, the page believes itself hidden from its first script on.
async function notifiedPerson(viewport) {
  const who = await person(browser, viewport);
  await who.context.grantPermissions(["notifications"], { origin: server.url });
  await who.context.addInitScript(() => {
    const Real = window.Notification;
    window.__notifications = [];
    window.__focused = 0;
    window.focus = () => {
      window.__focused += 1;
    };
    window.Notification = class extends EventTarget {
      constructor(title, options = {}) {
        super();
        Object.assign(this, { title, body: options.body, tag: options.tag, closed: false });
        window.__notifications.push(this);
      }
      close() {
        this.closed = true;
      }
      static get permission() {
        return Real.permission;
      }
      static requestPermission() {
        return Real.requestPermission();
      }
    };
    if (sessionStorage.getItem("start-hidden") === "1") {
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
      Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
    }
  });
  return who;
}

const notifications = (page) =>
  page.evaluate(() => window.__notifications.map(({ title, body, tag, closed }) => ({ title, body, tag, closed })));

/// The tab hidden (another tab in front) or shown again, as the page sees it.
const setHidden = (page, hidden) =>
  page.evaluate((h) => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (h ? "hidden" : "visible") });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => h });
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);

const waitForTitle = (page, title) =>
  page.waitForFunction((t) => document.title === t, title).catch(async () => {
    assert.equal(await page.title(), title);
  });

/// Waits (briefly) in case something that must not happen would.
const settle = (page) => page.waitForTimeout(300);

// ---- formatting ----------------------------------------------------------------

test("each formatting form becomes its element; markup and markers inside words stay as typed", async () => {
  const ann = await person(browser);
  const bob = await person(browser);
  await enterRoom(ann.page, server.url, "Ann", "fmt");
  await enterRoom(bob.page, server.url, "Bob", "fmt");
  const block = 'fn main() {\n    println!("*not* <b>bold</b> https://x.org");\n}';
  const sent = [
    "**bold** and *star* and _under_",
    "run `cargo test -- --nocapture` now",
    "```\n" + block + "\n```",
    "**see https://example.org/a_b_c** (or www.example.com), https://en.wikipedia.org/wiki/Rust_(language).",
    "snake_case_names, 2*3*4, a * b * c and __init__ stay as typed",
    "*unclosed, **also, `open and ```fence",
    "<img src=x onerror=alert(1)> and <b>not bold</b>",
  ];
  for (const text of sent) await say(bob.page, text);
  const literal = (text) => ({ text, tags: [], strong: [], em: [], code: [], pre: [], links: [] });
  const expected = [
    { text: "bold and star and under", tags: ["strong", "em", "em"], strong: ["bold"], em: ["star", "under"], code: [], pre: [], links: [] },
    { text: "run cargo test -- --nocapture now", tags: ["code"], strong: [], em: [], code: ["cargo test -- --nocapture"], pre: [], links: [] },
    { text: block, tags: ["pre", "code"], strong: [], em: [], code: [], pre: [block], links: [] },
    {
      text: "see https://example.org/a_b_c (or www.example.com), https://en.wikipedia.org/wiki/Rust_(language).",
      tags: ["strong", "a", "a", "a"],
      strong: ["see https://example.org/a_b_c"],
      em: [],
      code: [],
      pre: [],
      links: [
        ["https://example.org/a_b_c", "https://example.org/a_b_c", RELS, "_blank"],
        // A bare www. address links over https; the punctuation after it is not part of it.
        ["https://www.example.com", "www.example.com", RELS, "_blank"],
        ["https://en.wikipedia.org/wiki/Rust_(language)", "https://en.wikipedia.org/wiki/Rust_(language)", RELS, "_blank"],
      ],
    },
    literal(sent[4]),
    literal(sent[5]),
    literal(sent[6]),
  ];
  for (const { page } of [ann, bob]) {
    await waitForCount(page, sent.length);
    assert.deepEqual(await shapes(page), expected);
    assert.equal(await page.locator("#messages img, #messages b, #messages script").count(), 0, "no element from markup");
    assert.deepEqual(page.dialogs, [], "no dialog");
  }
  // The code block scrolls by keyboard too; the message body can hold it.
  assert.equal(await ann.page.getAttribute("#messages pre.code-block", "tabindex"), "0");
  assert.equal(await ann.page.$eval("#messages pre.code-block", (pre) => pre.parentElement.tagName), "DIV");
  await ann.context.close();
  await bob.context.close();
});

// ---- mentions ------------------------------------------------------------------

test("a mention of the reader marks the message; a mention of someone else is only styled", async () => {
  const zoe = await person(browser);
  const bob = await person(browser);
  const cy = await person(browser);
  await enterRoom(zoe.page, server.url, "Zoë Ann", "mentions");
  await enterRoom(bob.page, server.url, "Bob Smith", "mentions");
  await enterRoom(cy.page, server.url, "Cy", "mentions");
  await zoe.page.waitForFunction(() => document.querySelectorAll("#member-list li").length === 3);
  await say(cy.page, "@zoë ann, can you look?");
  await say(cy.page, "thanks @Bob Smith!");
  await say(cy.page, "mail zoë@example.com, not @Zoë Annex, nor `@Zoë Ann` in code");
  await say(zoe.page, "I am @Zoë Ann");
  for (const { page } of [zoe, bob, cy]) await waitForCount(page, 4);
  assert.deepEqual(await mentions(zoe.page), [
    ["@zoë ann, can you look?", true, ["@zoë ann"], []],
    ["thanks @Bob Smith!", false, [], ["@Bob Smith"]],
    ["mail zoë@example.com, not @Zoë Annex, nor @Zoë Ann in code", false, [], []],
    // Naming oneself is no call for one's own attention.
    ["I am @Zoë Ann", false, ["@Zoë Ann"], []],
  ]);
  assert.deepEqual(await mentions(bob.page), [
    ["@zoë ann, can you look?", false, [], ["@zoë ann"]],
    ["thanks @Bob Smith!", true, ["@Bob Smith"], []],
    ["mail zoë@example.com, not @Zoë Annex, nor @Zoë Ann in code", false, [], []],
    ["I am @Zoë Ann", false, [], ["@Zoë Ann"]],
  ]);
  // The accent shows: the marked message looks unlike the others.
  const [marked, plain] = await zoe.page.$$eval("#messages .msg[data-id]", (els) =>
    els.slice(0, 2).map((e) => getComputedStyle(e).backgroundColor),
  );
  assert.notEqual(marked, plain);
  for (const who of [zoe, bob, cy]) await who.context.close();
});

// ---- unread counts and notifications -------------------------------------------

test("mentions in a hidden tab raise a notification once asked for; the title counts unread messages", async () => {
  const ann = await notifiedPerson();
  const bob = await person(browser);
  await enterRoom(ann.page, server.url, "Ann", "ping");
  await enterRoom(bob.page, server.url, "Bob", "ping");
  await ann.page.waitForFunction(() => document.querySelectorAll("#member-list li").length === 2);

  // Off until asked for: the count and its marker, and no notification.
  const toggle = ann.page.locator("#notify-toggle");
  assert.equal(await toggle.getAttribute("aria-pressed"), "false");
  assert.equal((await toggle.textContent()).trim(), "Notify me of mentions");
  await setHidden(ann.page, true);
  await say(bob.page, "@Ann before asking");
  await waitForTitle(ann.page, "(1, @) #ping · Parlor");
  await settle(ann.page);
  assert.deepEqual(await notifications(ann.page), []);
  await setHidden(ann.page, false);
  assert.equal(await ann.page.title(), "#ping · Parlor");

  // Asked for with a click: remembered in this browser.
  await toggle.click();
  await ann.page.waitForFunction(() => document.getElementById("notify-toggle").getAttribute("aria-pressed") === "true");
  assert.equal(await ann.page.evaluate(() => localStorage.getItem("parlor.notify-mentions")), "on");

  await setHidden(ann.page, true);
  await say(bob.page, "lunch?");
  await waitForTitle(ann.page, "(1) #ping · Parlor");
  await say(bob.page, "@Ann are you **coming**?");
  await waitForTitle(ann.page, "(2, @) #ping · Parlor");
  await ann.page.waitForFunction(() => window.__notifications.length === 1);
  const [note] = await notifications(ann.page);
  assert.equal(note.title, "Bob mentioned you in #ping");
  assert.equal(note.body, "@Ann are you coming?", "plain text, without the markers");
  // Ann's own message (from another tab, say) neither counts nor notifies.
  await say(ann.page, "note to self, @Ann");
  await waitForMessage(ann.page, "note to self, @Ann");
  await settle(ann.page);
  assert.equal(await ann.page.title(), "(2, @) #ping · Parlor");
  assert.equal((await notifications(ann.page)).length, 1);

  // Clicking the notification brings the tab forward.
  await ann.page.evaluate(() => window.__notifications[0].onclick());
  assert.equal(await ann.page.evaluate(() => window.__focused), 1);
  assert.equal((await notifications(ann.page))[0].closed, true);

  // Back in the tab, at the bottom: caught up.
  await setHidden(ann.page, false);
  assert.equal(await ann.page.title(), "#ping · Parlor");
  // A mention in view raises nothing.
  await say(bob.page, "@Ann you are here");
  await waitForMessage(ann.page, "@Ann you are here");
  await settle(ann.page);
  assert.equal(await ann.page.title(), "#ping · Parlor");
  assert.equal((await notifications(ann.page)).length, 1);

  // The history's mentions raise nothing, even in a hidden tab; the choice
  // outlives the page.
  await ann.page.evaluate(() => sessionStorage.setItem("start-hidden", "1"));
  await ann.page.reload();
  await connected(ann.page);
  await waitForMessage(ann.page, "@Ann you are here");
  assert.equal(await ann.page.evaluate(() => document.visibilityState), "hidden");
  assert.equal(await ann.page.getAttribute("#notify-toggle", "aria-pressed"), "true");
  await settle(ann.page);
  assert.deepEqual(await notifications(ann.page), []);
  assert.equal(await ann.page.title(), "#ping · Parlor");
  await say(bob.page, "@ann still there?");
  await ann.page.waitForFunction(() => window.__notifications.length === 1);
  assert.equal((await notifications(ann.page))[0].body, "@ann still there?");
  await waitForTitle(ann.page, "(1, @) #ping · Parlor");

  // Turned off: no more notifications; the count goes on.
  await ann.page.click("#notify-toggle");
  assert.equal(await ann.page.getAttribute("#notify-toggle", "aria-pressed"), "false");
  assert.equal(await ann.page.evaluate(() => localStorage.getItem("parlor.notify-mentions")), "off");
  await say(bob.page, "@Ann last call");
  await waitForTitle(ann.page, "(2, @) #ping · Parlor");
  await settle(ann.page);
  assert.equal((await notifications(ann.page)).length, 1);
  await ann.page.evaluate(() => sessionStorage.removeItem("start-hidden"));
  await ann.context.close();
  await bob.context.close();
});

test("a reader scrolled up counts what arrives below until back at the bottom", async () => {
  await post(server.url, "/create_room", { room: "scrolled" });
  for (let i = 1; i <= 40; i++) await post(server.url, "/store_message", { room: "scrolled", user: "bot", text: `old ${i}` });
  const { context, page } = await person(browser);
  await enterRoom(page, server.url, "Sue", "scrolled");
  await page.$eval("#messages", (m) => m.scrollTo(0, 200));
  await post(server.url, "/store_message", { room: "scrolled", user: "bot", text: "fresh" });
  await waitForTitle(page, "(1) #scrolled · Parlor");
  await post(server.url, "/store_message", { room: "scrolled", user: "bot", text: "@sue look" });
  await waitForTitle(page, "(2, @) #scrolled · Parlor");
  await page.click(".new-pill");
  await waitForTitle(page, "#scrolled · Parlor");
  await context.close();
});

test("in an encrypted room, a mention is found in the decrypted text, which alone makes the snippet", async () => {
  const alice = await notifiedPerson();
  await alice.page.goto(server.url + "/");
  await alice.page.fill("#name", "Alice");
  await alice.page.fill("#room", "secret-ping");
  await alice.page.check('input[name="e2e"][value="link"]');
  await alice.page.click("#go");
  await alice.page.waitForURL((url) => url.pathname === "/chat/secret-ping");
  await connected(alice.page);
  const key = await alice.page.evaluate(() => localStorage.getItem("parlor:key:secret-ping"));
  assert.ok(key, "the room's key is kept");
  await alice.page.click("#notify-toggle");
  await alice.page.waitForFunction(() => document.getElementById("notify-toggle").getAttribute("aria-pressed") === "true");

  const bob = await person(browser);
  await bob.page.goto(`${server.url}/chat/secret-ping#k=${key}`);
  await bob.page.waitForSelector("#name-dialog[open]");
  await bob.page.fill("#name-input", "Bob");
  await bob.page.click("#name-form button[type=submit]");
  await connected(bob.page);
  await alice.page.waitForFunction(() => document.querySelectorAll("#member-list li").length === 2);

  await setHidden(alice.page, true);
  await say(bob.page, "@Alice the **plan** is on");
  await alice.page.waitForFunction(() => window.__notifications.length === 1);
  const [note] = await notifications(alice.page);
  assert.equal(note.title, "Bob mentioned you in #secret-ping");
  assert.equal(note.body, "@Alice the plan is on");
  await waitForTitle(alice.page, "(1, @) #secret-ping · Parlor");
  assert.deepEqual(await mentions(alice.page), [["@Alice the plan is on", true, ["@Alice"], []]]);
  await setHidden(alice.page, false);
  assert.equal(await alice.page.title(), "#secret-ping · Parlor");
  await alice.context.close();
  await bob.context.close();
});

// ---- screenshots ---------------------------------------------------------------

test("screenshots of a formatted conversation with mentions, at desktop and phone width", async () => {
  const ann = await person(browser);
  const pia = await person(browser, { width: 390, height: 844 });
  const bob = await person(browser);
  await enterRoom(ann.page, server.url, "Ann", "release");
  await enterRoom(pia.page, server.url, "Pia", "release");
  await enterRoom(bob.page, server.url, "Bob", "release");
  await ann.page.waitForFunction(() => document.querySelectorAll("#member-list li").length === 3);
  await pia.page.waitForFunction(() => document.querySelectorAll("#member-list li").length === 3);
  const sent = [
    [bob, "Morning @Ann! The **release** is _almost_ ready, notes at www.example.com/release-notes."],
    [ann, "Great. Did you run `cargo test --workspace` with the *new* flags?"],
    [
      bob,
      "```\n$ cargo test --workspace -- --test-threads=1 --nocapture 2>&1 | tee target/test-output-with-a-long-name.log\ntest result: ok. 212 passed; 0 failed; 0 ignored\n```",
    ],
    [bob, "@Pia can you check that snake_case_names look right on the phone? <b>not bold</b>"],
    [pia, "On it, @Bob. Looks *good* so far."],
  ];
  // One at a time, so they show in this order.
  for (const [i, [who, text]] of sent.entries()) {
    await say(who.page, text);
    await waitForCount(ann.page, i + 1);
  }
  await waitForCount(pia.page, sent.length);
  await ann.page.screenshot({ path: join(SHOTS, "format-desktop.png") });
  await pia.page.screenshot({ path: join(SHOTS, "format-phone.png") });

  // On a phone the page is no wider than the screen: the code block scrolls
  // sideways within its message instead.
  const phone = await pia.page.evaluate(() => {
    const pre = document.querySelector("#messages pre.code-block");
    return {
      pageWidth: document.documentElement.scrollWidth,
      viewport: window.innerWidth,
      preScrolls: pre.scrollWidth > pre.clientWidth,
      preRight: pre.getBoundingClientRect().right,
    };
  });
  assert.ok(phone.pageWidth <= phone.viewport, `the page fits the phone: ${JSON.stringify(phone)}`);
  assert.ok(phone.preScrolls, "the long line scrolls");
  assert.ok(phone.preRight <= phone.viewport, "the code block ends within the screen");
  assert.deepEqual((await mentions(pia.page)).map(([, me]) => me), [false, false, false, true, false]);
  for (const who of [ann, pia, bob]) await who.context.close();
});
