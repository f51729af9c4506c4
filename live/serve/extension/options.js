// Loaded by <script src>: MV3 extension pages forbid inline scripts.
"use strict";

const DEFAULTS = {server: "http://127.0.0.1:8189", token: "", avatar: ""};
const form = document.getElementById("settings");
const status = document.getElementById("status");

chrome.storage.local.get(DEFAULTS).then((settings) => {
  for (const key of Object.keys(DEFAULTS)) form.elements[key].value = settings[key];
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const server = form.elements.server.value.trim().replace(/\/+$/, "") || DEFAULTS.server;
  if (!/^https?:\/\/[^/]/i.test(server)) {
    status.textContent = "The server URL must start with http:// or https://";
    return;
  }
  await chrome.storage.local.set({
    server,
    token: form.elements.token.value.trim(),
    avatar: form.elements.avatar.value.trim(),
  });
  form.elements.server.value = server;
  status.textContent = "Saved.";
});
