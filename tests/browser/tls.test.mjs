// Parlor serving HTTPS and WSS itself, to a real Chromium that verifies it.
// A certificate authority and a certificate for parlor.test are made here
// with openssl; Chromium is told to accept that one certificate's key and
// nothing else (--ignore-certificate-errors-spki-list), and to resolve
// parlor.test to this machine. A browser without that flag refuses the
// same certificate, so the trust is exactly what the test grants.
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  connected,
  expectNoScriptErrors,
  launchBrowser,
  person,
  say,
  startServer,
  waitForMessage,
} from "./harness.mjs";

const HOST = "parlor.test";
let server;
let browser;
let origin;
let spki;

/// `openssl` with its output, failing the test on an error.
const openssl = (...args) => execFileSync("openssl", args, { stdio: ["pipe", "pipe", "pipe"] });

/// A CA, and a certificate it issued for parlor.test, localhost and
/// 127.0.0.1; answers the files and the SHA-256 of the certificate's public
/// key, base64 (what Chromium's SPKI list takes).
function makeCertificate() {
  const dir = mkdtempSync(join(tmpdir(), "parlor-tls-"));
  const at = (name) => join(dir, name);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl("req", "-x509", ...ec, "-days", "2", "-subj", "/CN=Parlor browser test CA", "-keyout", at("ca.key"), "-out", at("ca.pem"));
  openssl("req", ...ec, "-subj", `/CN=${HOST}`, "-keyout", at("server.key"), "-out", at("server.csr"));
  writeFileSync(at("san.ext"), `subjectAltName=DNS:${HOST},DNS:localhost,IP:127.0.0.1\n`);
  openssl(
    "x509", "-req", "-in", at("server.csr"), "-CA", at("ca.pem"), "-CAkey", at("ca.key"), "-CAcreateserial",
    "-days", "2", "-extfile", at("san.ext"), "-out", at("server.pem"),
  );
  const publicKey = openssl("x509", "-in", at("server.pem"), "-pubkey", "-noout");
  const der = execFileSync("openssl", ["pkey", "-pubin", "-outform", "der"], { input: publicKey });
  const digest = execFileSync("openssl", ["dgst", "-sha256", "-binary"], { input: der });
  return { cert: at("server.pem"), key: at("server.key"), spki: digest.toString("base64") };
}

before(async () => {
  const made = makeCertificate();
  spki = made.spki;
  server = await startServer({ args: ["--tls-cert", made.cert, "--tls-key", made.key] });
  assert.match(server.url, /^https:\/\//, "the server says it serves HTTPS");
  origin = `https://${HOST}:${server.port}`;
  browser = await launchBrowser({
    args: [`--ignore-certificate-errors-spki-list=${spki}`, `--host-resolver-rules=MAP ${HOST} 127.0.0.1`],
  });
});

afterEach(() => expectNoScriptErrors(assert));

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("two people chat in an end-to-end encrypted room over HTTPS and WSS on a real host name", async () => {
  const alice = await person(browser);
  const sockets = [];
  alice.page.on("websocket", (ws) => sockets.push(ws.url()));
  const response = await alice.page.goto(origin + "/");
  assert.equal(response.status(), 200);
  assert.equal(response.headers()["strict-transport-security"], "max-age=31536000");
  assert.equal(await alice.page.evaluate(() => window.isSecureContext), true, "WebCrypto needs a secure context");

  // Over HTTPS on a name that is not localhost, the encrypted choice is on.
  await alice.page.fill("#name", "Alice");
  await alice.page.fill("#room", "tls-sealed");
  await alice.page.check('input[name="e2e"][value="link"]');
  await alice.page.click("#go");
  await alice.page.waitForURL((url) => url.pathname === "/chat/tls-sealed");
  await connected(alice.page);
  assert.deepEqual(sockets, [`wss://${HOST}:${server.port}/ws`], "the page opened its socket over TLS");
  const cookies = await alice.context.cookies(origin);
  assert.ok(cookies.length > 0, "the pages set cookies");
  for (const cookie of cookies) assert.equal(cookie.secure, true, `${cookie.name} is Secure`);

  const key = await alice.page.evaluate(() => localStorage.getItem("parlor:key:tls-sealed"));
  assert.match(key ?? "", /^[A-Za-z0-9_-]{43}$/);
  const bob = await person(browser);
  await bob.page.goto(`${origin}/chat/tls-sealed#k=${key}`);
  await bob.page.waitForSelector("#name-dialog[open]");
  await bob.page.fill("#name-input", "Bob");
  await bob.page.click("#name-form button[type=submit]");
  await connected(bob.page);

  await say(alice.page, "the wire sees only TLS, the server only ciphertext");
  await waitForMessage(bob.page, "the wire sees only TLS, the server only ciphertext");
  await say(bob.page, "and both hold");
  await waitForMessage(alice.page, "and both hold");
  await alice.context.close();
  await bob.context.close();
});

test("a browser not told to trust the certificate refuses it; plain http to the port gets a clear refusal", async () => {
  const strict = await launchBrowser({ args: [`--host-resolver-rules=MAP ${HOST} 127.0.0.1`] });
  try {
    const page = await strict.newPage();
    await assert.rejects(page.goto(origin + "/"), /ERR_CERT_AUTHORITY_INVALID/);
    const other = await strict.newPage();
    const plain = await other.goto(`http://${HOST}:${server.port}/`);
    assert.equal(plain.status(), 400);
    assert.match(await other.textContent("body"), /HTTPS only: use an https:\/\/ address/);
  } finally {
    await strict.close();
  }
});
