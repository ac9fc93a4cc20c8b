// The admin console: each button calls the JSON admin API (same-origin, with
// the login cookie), then the page reloads to show the new state and the
// audit entry. The page also refreshes itself while nobody is using it.
const status = document.getElementById("admin-status");

// The server writes times in UTC; admins read them in their own time, with
// the UTC one a hover away.
for (const time of document.querySelectorAll("main time")) {
  const at = new Date(time.textContent.trim());
  if (Number.isNaN(at.getTime())) continue;
  time.dateTime = at.toISOString();
  time.title = `${at.toISOString()} (UTC)`;
  time.textContent = at.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: method === "DELETE" ? undefined : JSON.stringify(body ?? {}),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(answer.message || `${response.status}`);
  return answer;
}

const actions = {
  kick: (room, user) => call("POST", `/admin/rooms/${room}/kick`, { user }),
  mute: (room, user) => call("POST", `/admin/rooms/${room}/mute`, { user, minutes: 10 }),
  ban: (_room, user) => call("POST", `/admin/users/${encodeURIComponent(user)}/ban`, {}),
  close: (room) => call("POST", `/admin/rooms/${room}/close`, {}),
  reopen: (room) => call("POST", `/admin/rooms/${room}/reopen`, {}),
  unmute: (room, user) => call("POST", `/admin/rooms/${room}/unmute`, { user }),
  roomban: (room, user) => call("POST", `/admin/rooms/${room}/ban`, { user }),
  letin: (room, user) => call("POST", `/admin/rooms/${room}/unban`, { user }),
  unban: (_room, user) => call("POST", `/admin/users/${encodeURIComponent(user)}/unban`, {}),
  privacy: (room, _user, button) => call("POST", `/admin/rooms/${room}/privacy`, { private: button.dataset.private === "true" }),
};

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const room = button.closest("tr[data-room]")?.dataset.room;
  const user = button.closest("[data-user]")?.dataset.user;
  const action = button.dataset.action;
  const label = button.textContent.replace(/^Really\? /, "").trim().toLowerCase();
  const what = user ? `${label}: ${user}${room ? ` in ${room}` : ""}` : `${label}: ${room}`;
  // What is hard to undo asks once more, in the page: the first click arms
  // the button for a few seconds, the second does it.
  if (["ban", "roomban", "close"].includes(action) && !button.dataset.armed) {
    const label = button.textContent;
    button.dataset.armed = "true";
    button.textContent = `Really? ${label}`;
    button.classList.add("armed");
    setTimeout(() => {
      delete button.dataset.armed;
      button.textContent = label;
      button.classList.remove("armed");
    }, 5000);
    return;
  }
  button.disabled = true;
  try {
    await actions[action](room, user, button);
    status.textContent = `Done: ${what}.`;
    setTimeout(() => location.reload(), 400);
  } catch (error) {
    status.textContent = `Could not ${what}: ${error.message}`;
    button.disabled = false;
  }
});

let lastActivity = Date.now();
for (const kind of ["mousemove", "keydown", "scroll"]) document.addEventListener(kind, () => (lastActivity = Date.now()));
setInterval(() => {
  if (!document.hidden && Date.now() - lastActivity > 10000) location.reload();
}, 10000);

// Live figures: /admin/stats every 2 s, rates from the counters' change, and
// the last two minutes as a small line under each figure.
const HISTORY = 60;
const series = { connections: [], messages_per_sec: [], deliveries_per_sec: [], writer_queue_depth: [] };
let previous = null;

function draw(name, value, text) {
  const figure = document.querySelector(`#live-figures [data-figure="${name}"]`);
  if (!figure) return;
  const values = series[name];
  values.push(value);
  if (values.length > HISTORY) values.shift();
  figure.querySelector("strong").textContent = text ?? Math.round(value).toLocaleString();
  const top = Math.max(1, ...values);
  const points = values.map((v, i) => `${(i * 120) / (HISTORY - 1)},${30 - (v / top) * 28 - 1}`).join(" ");
  figure.querySelector("polyline").setAttribute("points", points);
}

// In a cluster each node reports its own figures; the figures above add
// them up, and a table lists them node by node.
const previousByNode = new Map();
const COUNTERS = ["connections", "rooms", "members", "writer_queue_depth", "messages_accepted", "deliveries", "dead_letters"];

function clusterTotals(nodes) {
  const total = { at_ms: Math.max(...nodes.map((n) => n.figures.at_ms)), oldest_unwritten_ms: 0 };
  for (const key of COUNTERS) total[key] = nodes.reduce((sum, n) => sum + (n.figures[key] || 0), 0);
  total.oldest_unwritten_ms = Math.max(...nodes.map((n) => n.figures.oldest_unwritten_ms || 0));
  // A room with members on two nodes is active on both: the busiest node's
  // count is the floor, not the sum.
  total.rooms = Math.max(...nodes.map((n) => n.figures.rooms || 0));
  return total;
}

function showNodes(nodes) {
  const table = document.getElementById("node-figures");
  if (!table) return;
  table.hidden = false;
  const rows = nodes.map(({ node, figures }) => {
    const before = previousByNode.get(node);
    const seconds = before ? Math.max(0.001, (figures.at_ms - before.at_ms) / 1000) : 0;
    const rate = (key) => (before && figures.at_ms > before.at_ms ? ((figures[key] - before[key]) / seconds).toFixed(1) : "–");
    if (!before || figures.at_ms > before.at_ms) previousByNode.set(node, figures);
    const ago = Math.max(0, Math.round((Date.now() - figures.at_ms) / 1000));
    const cells = [node, figures.connections, rate("messages_accepted"), rate("deliveries"), figures.writer_queue_depth, `${ago} s ago`];
    const tr = document.createElement("tr");
    tr.dataset.node = node;
    for (const value of cells) {
      const td = document.createElement("td");
      td.textContent = String(value);
      tr.append(td);
    }
    return tr;
  });
  table.tBodies[0].replaceChildren(...rows);
}

async function poll() {
  try {
    const response = await fetch("/admin/stats", { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const answer = await response.json();
    const nodes = answer.nodes || [];
    if (nodes.length) showNodes(nodes);
    const now = nodes.length ? clusterTotals(nodes) : answer;
    if (previous) {
      const seconds = Math.max(0.001, (now.at_ms - previous.at_ms) / 1000);
      draw("messages_per_sec", (now.messages_accepted - previous.messages_accepted) / seconds);
      draw("deliveries_per_sec", (now.deliveries - previous.deliveries) / seconds);
    }
    draw("connections", now.connections);
    draw("writer_queue_depth", now.writer_queue_depth);
    const notes = [`${now.rooms} active rooms, ${now.members} memberships`];
    if (nodes.length) notes.push(`${nodes.length} node(s) reporting`);
    if (now.oldest_unwritten_ms > 0) notes.push(`oldest unwritten message ${(now.oldest_unwritten_ms / 1000).toFixed(1)} s`);
    if (now.dead_letters > 0) notes.push(`${now.dead_letters} writes set aside (GET /admin/dead-letters)`);
    document.getElementById("live-notes").textContent = notes.join(" · ");
    previous = now;
  } catch {
    // The next poll tries again.
  }
}
if (document.getElementById("live-figures")) {
  poll();
  setInterval(poll, 2000);
}
