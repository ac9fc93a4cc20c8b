// The admin console: each button calls the JSON admin API (same-origin, with
// the login cookie), then the page reloads to show the new state and the
// audit entry. The page also refreshes itself while nobody is using it.
const status = document.getElementById("admin-status");

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
  privacy: (room, _user, button) => call("POST", `/admin/rooms/${room}/privacy`, { private: button.dataset.private === "true" }),
};

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const room = button.closest("tr[data-room]")?.dataset.room;
  const user = button.closest("[data-user]")?.dataset.user;
  const action = button.dataset.action;
  const what = user ? `${action} ${user} in ${room}` : `${action} ${room}`;
  if (["ban", "close"].includes(action) && !window.confirm(`Really ${what}?`)) return;
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
