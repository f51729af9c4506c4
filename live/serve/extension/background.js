// The fetch happens here, not in the page: a call app served over https may
// not reach http://127.0.0.1 itself (mixed content, local-network rules, its
// own CSP), while an extension with host_permissions may.

const DEFAULT_SERVER = "http://127.0.0.1:8189";
// Shorter than the page's 15 s wait, so a hung server yields an error that
// names the URL instead of a bare timeout in the page.
const FETCH_TIMEOUT_MS = 13000;

chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
  if (!msg || msg.kind !== "offer" || sender.id !== chrome.runtime.id) return false;
  offer(msg).then(sendResponse);
  return true; // sendResponse is called after the fetch settles
});

async function offer({server, token, body}) {
  const base = String(server || DEFAULT_SERVER).trim().replace(/\/+$/, "");
  if (!/^https?:\/\//i.test(base)) {
    return {ok: false, error: `the server URL "${base}" must start with http:// or https:// (see the extension's options)`};
  }
  const url = base + "/api/offer" + (token ? "?token=" + encodeURIComponent(token) : "");
  let res;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
  } catch (err) {
    return {ok: false, error: `no live server answers (${err.message}): start it with \`live serve\`, or set its ` +
      "address in the extension's options"};
  }
  let json = null;
  try {
    json = await res.json();
  } catch (err) {
    // A proxy or a wrong port answers HTML; the status line is all we have.
  }
  if (res.ok) {
    return json ? {ok: true, body: json} : {ok: false, error: `${base} did not answer JSON; is it a live server?`};
  }
  return {ok: false, error: (json && json.error) || res.statusText || `HTTP ${res.status}`};
}
