// Home page: check fields as they are typed and keep the active room list live.
const ROOM_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

const form = document.getElementById("room-form");
const roomInput = document.getElementById("room");
const roomError = document.getElementById("room-error");
const nameInput = document.getElementById("name");
const nameError = document.getElementById("name-error");

function showError(input, slot, message) {
  slot.textContent = message;
  if (message) {
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", slot.id);
  } else {
    input.removeAttribute("aria-invalid");
  }
}

function checkRoom() {
  const room = roomInput.value.trim();
  const ok = room === "" || ROOM_PATTERN.test(room);
  showError(roomInput, roomError, ok ? "" : "room names use lowercase letters, digits, '-' and '_', and start with a letter or digit");
  return ok;
}

function checkName() {
  const name = nameInput.value.trim();
  let message = "";
  if (name === "") message = "display name must not be empty";
  else if ([...name].length > 32) message = "display name is longer than 32 characters";
  showError(nameInput, nameError, message);
  return message === "";
}

roomInput.addEventListener("input", checkRoom);
nameInput.addEventListener("input", checkName);
form.addEventListener("submit", (event) => {
  const ok = checkName() & checkRoom();
  if (!ok) event.preventDefault();
});

const list = document.getElementById("active-rooms");

function renderRooms(rooms) {
  list.replaceChildren();
  if (rooms.length === 0) {
    const li = document.createElement("li");
    li.className = "empty";
    li.textContent = "No one is chatting right now. Start a room!";
    list.append(li);
    return;
  }
  for (const room of rooms) {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = room.url;
    link.textContent = room.name;
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = `${room.members} online`;
    li.append(link, " ", count);
    list.append(li);
  }
}

async function refreshRooms() {
  try {
    const response = await fetch("/api/rooms", { headers: { Accept: "application/json" } });
    if (response.ok) renderRooms((await response.json()).rooms);
  } catch {
    // Offline for a moment: keep the last list.
  }
}

setInterval(() => {
  if (!document.hidden) refreshRooms();
}, 5000);
