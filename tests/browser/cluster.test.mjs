// Three Parlor nodes over one Redis behind Debian's Nginx, configured as the
// README says (docs/nginx/parlor.conf): two people whose pages landed on
// different nodes chat, and go on chatting when one's node dies and comes back.
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ADMIN_TOKEN,
  connected,
  enterRoom,
  expectNoScriptErrors,
  ids,
  launchBrowser,
  person,
  say,
  startServer,
  waitForMessage,
} from "./harness.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const db = join(mkdtempSync(join(tmpdir(), "parlor-cluster-")), "parlor.db");
const prefix = `browser-${process.pid}-${Date.now()}:`;
// Every node signs cookies with the same key: a form served by one is
// posted to another.
const args = [
  "--redis-url", "redis://127.0.0.1:6379", "--redis-prefix", prefix,
  "--secret-key", "a secret every node of this test shares, long enough",
];
let nodes = [];
let nginx;
let base;
let browser;

async function freePort() {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  return port;
}

async function startNginx(ports) {
  const dir = mkdtempSync(join(tmpdir(), "parlor-nginx-"));
  const port = await freePort();
  let site = readFileSync(join(ROOT, "docs/nginx/parlor.conf"), "utf8");
  site = site.replace(/(upstream parlor \{\n)(?:\s*server [^\n]+\n)+/, (_, open) =>
    open + ports.map((p) => `    server 127.0.0.1:${p};\n`).join(""),
  );
  site = site.replace("listen 80;", `listen 127.0.0.1:${port};`);
  const conf = `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 512; }
http { access_log off; client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
${site}
}`;
  writeFileSync(join(dir, "nginx.conf"), conf);
  const child = spawn("nginx", ["-e", `${dir}/error.log`, "-p", dir, "-c", join(dir, "nginx.conf")], {
    stdio: "ignore",
  });
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/healthz`);
      return { url: `http://127.0.0.1:${port}`, stop: () => child.kill("SIGTERM") };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error("nginx did not start");
}

/// The node each member of `room` is connected to, from any node's admin view.
async function nodesOf(room) {
  const response = await fetch(`${nodes[0].url}/admin/rooms?format=json`, {
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  const { rooms } = await response.json();
  const found = rooms.find((r) => r.name === room);
  return Object.fromEntries((found?.connections ?? []).map((c) => [c.name, c.node]));
}

/// A node named `name` (the admin view says which node each person is on).
async function startNode(name, port = 0) {
  const node = await startServer({ port, db, args: [...args, "--node-name", name] });
  node.name = name;
  return node;
}

before(async () => {
  for (let i = 1; i <= 3; i++) nodes.push(await startNode(`node-${i}`));
  nginx = await startNginx(nodes.map((n) => n.port));
  base = nginx.url;
  browser = await launchBrowser();
});

afterEach(() => expectNoScriptErrors(assert));

after(async () => {
  await browser?.close();
  nginx?.stop();
  for (const node of nodes) await node.stop();
});

test("two pages on different nodes behind Nginx chat, and across one node's restart", async () => {
  const alice = await person(browser);
  const bob = await person(browser);
  await enterRoom(alice.page, base, "Alice", "spread");
  await enterRoom(bob.page, base, "Bob", "spread");
  // Round robin sends every request to the next node; reload until the two
  // pages' sockets are on different nodes.
  let where = await nodesOf("spread");
  for (let tries = 0; where.Alice === where.Bob && tries < 6; tries++) {
    await bob.page.reload();
    await connected(bob.page);
    where = await nodesOf("spread");
  }
  assert.notEqual(where.Alice, where.Bob, `the pages are on different nodes: ${JSON.stringify(where)}`);
  assert.equal(await bob.page.locator("#members li").count(), 2, "Bob's page lists Alice, on another node");

  await say(alice.page, "hello from one node");
  await waitForMessage(bob.page, "hello from one node");
  await say(bob.page, "hello from another");
  await waitForMessage(alice.page, "hello from another");

  // Bob's node dies; the room goes on; the node comes back on its port.
  const victim = nodes.find((n) => n.name === where.Bob);
  assert.ok(victim, "Bob's node is one of ours");
  await victim.kill();
  await bob.page.waitForFunction(() => document.getElementById("status").classList.contains("offline"));
  await say(alice.page, "while bob's node was down");
  await connected(bob.page, 30000);
  await waitForMessage(bob.page, "while bob's node was down", 15000);
  nodes[nodes.indexOf(victim)] = await startNode(victim.name, victim.port);

  await say(bob.page, "back");
  await waitForMessage(alice.page, "back");
  // Bob's own copy comes from his node, Alice's from hers: either may be first.
  await waitForMessage(bob.page, "back");
  const seen = await ids(bob.page);
  assert.deepEqual(seen, [...new Set(seen)].sort((x, y) => x - y), "every message once, in order");
  assert.equal(seen.length, 4);
});
