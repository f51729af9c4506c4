// Isolated world: the only content-script side with chrome.* APIs. It relays
// the page's offer to the service worker, adding the settings here so the
// token never becomes visible to the page's own scripts.
(() => {
  "use strict";

  const PAGE = "live-avatar-page";
  const EXTENSION = "live-avatar-extension";
  const DEFAULTS = {server: "http://127.0.0.1:8189", token: "", avatar: ""};

  window.addEventListener("message", (event) => {
    const msg = event.data;
    // Same-window messages only: other frames could otherwise drive the relay.
    if (event.source !== window || !msg || msg.source !== PAGE || msg.kind !== "offer") return;
    const id = msg.id;
    if (typeof id !== "string" && typeof id !== "number") return;
    relay(msg.body || {}).then((reply) => {
      window.postMessage({source: EXTENSION, id, ...reply}, "*");
    });
  });

  // Any script in any page can post to this bridge. The avatar stream is a camera, so only a page the user
  // gave the camera to may have it: inject.js asks for the real camera first, which prompts; a page that
  // skips that and posts an offer on its own is refused here.
  async function cameraAllowed() {
    try {
      return (await navigator.permissions.query({name: "camera"})).state === "granted";
    } catch (err) {
      return false;
    }
  }

  async function relay(pageBody) {
    if (!(await cameraAllowed())) {
      return {ok: false, error: "this page has not been given the camera; allow it, then pick 'live avatar'"};
    }
    let server = DEFAULTS.server;
    try {
      const settings = await chrome.storage.local.get(DEFAULTS);
      server = String(settings.server || DEFAULTS.server).trim().replace(/\/+$/, "");
      // Pass on only the fields the server expects; the page is not trusted.
      const body = {
        sdp: String(pageBody.sdp || ""),
        type: String(pageBody.type || "offer"),
        avatar: typeof pageBody.avatar === "string" && pageBody.avatar ? pageBody.avatar : null,
      };
      if (body.avatar === null && settings.avatar) body.avatar = settings.avatar;
      const reply = await chrome.runtime.sendMessage(
        {kind: "offer", server, token: settings.token || "", body});
      if (!reply) return {ok: false, error: "the live avatar extension gave no answer"};
      // the answer's SDP only (not the server's address or anything else it said)
      return reply.ok
        ? {ok: true, body: {sdp: String(reply.body.sdp || ""), type: "answer"}}
        : {ok: false, error: String(reply.error || "unknown error")};
    } catch (err) {
      // Typically "Extension context invalidated" after the extension was
      // reloaded: this page still runs the old content scripts.
      return {ok: false, error: `the live avatar extension failed (${err && err.message}); reload the page`};
    }
  }
})();
