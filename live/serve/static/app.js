// The live serve page: the browser's camera goes to the server over WebRTC, the avatar comes back.
// window.liveState and window.grabFrame are read by the tests (tests/test_serve_browser.py).
"use strict";

const query = new URLSearchParams(location.search);
const token = query.get("token");
const $ = (id) => document.getElementById(id);
const state = (window.liveState = { phase: "idle", error: null, stats: null, id: null, received: 0 });
let pc = null, camera = null, retries = 0, figuresTimer = null, retryTimer = null;
let generation = 0;   // bumped by stop(): a start() still awaiting finds it changed and gives up

function api(path) {
  return token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : path;
}

function say(text, isError = false) {
  $("notice").textContent = text;
  $("notice").classList.toggle("error", isError);
  if (isError) state.error = text;
}

function missingFeature() {
  if (!window.RTCPeerConnection) return "This browser has no WebRTC: use a current Chrome, Edge, Firefox or Safari.";
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia)
    return "The camera is only given to secure pages: open this page over https (start live serve with --cert/--key " +
      "or --self-signed), or on this machine as http://127.0.0.1.";
  return null;
}

async function loadAvatars() {
  const r = await fetch(api("/api/avatars"));
  const info = await answerOf(r);
  if (!r.ok) throw new Error(info.error || r.statusText);
  const select = $("avatar");
  select.replaceChildren(...info.avatars.map((a) => new Option(a.name + (a.uploaded ? " (uploaded)" : ""), a.id)));
  select.value = query.get("avatar") || info.default;
  $("upload-label").hidden = !info.uploads;
}

async function answerOf(r) {
  // the server answers JSON; a proxy or a crash may not
  try { return await r.json(); } catch (e) { return { error: `${r.status} ${r.statusText}` }; }
}

async function upload(file) {
  say(`Making an avatar from ${file.name} ...`);
  let r, info;
  try {
    r = await fetch(api(`/api/avatars?name=${encodeURIComponent(file.name)}`), {
      method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
    info = await answerOf(r);
  } catch (e) {
    return say(`The upload did not reach the server (${e.message}).`, true);
  }
  if (!r.ok) return say(`That photo was not taken: ${info.error}`, true);
  await loadAvatars();
  $("avatar").value = info.id;
  say(`Avatar made from ${file.name}. Press Start (or Stop and Start) to drive it.`);
}

function waitForIce(peer) {
  // aiortc takes no trickled candidates: the offer goes out with all of them
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => peer.iceGatheringState === "complete" && resolve();
    peer.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000);
  });
}

async function start(reconnecting = false) {
  const missing = missingFeature();
  if (missing) return say(missing, true);
  stop(false);
  const mine = generation;
  const stale = () => mine !== generation;       // Stop was pressed meanwhile
  state.phase = "starting"; state.error = null;
  $("start").disabled = true; $("stop").disabled = false;
  try {
    camera = camera || (await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false }));
  } catch (e) {
    $("start").disabled = false;
    state.phase = "idle";
    return say(`No camera: ${e.message}. Allow the camera for this page, or close other programs that use it.`, true);
  }
  if (stale()) return;
  $("camera").srcObject = camera;
  const peer = (pc = new RTCPeerConnection({ iceServers: [] }));
  const channel = (state.channel = peer.createDataChannel("stats"));
  channel.onmessage = (m) => {
    const data = JSON.parse(m.data);
    if (data.closed) {            // the server ended the stream and says why: no reconnecting into the same end
      stop(false);
      say(`The server ended the stream: ${data.error || data.closed}. Press Start to try again.`, true);
    } else { state.stats = data; matchServerPace(data.loop_fps); showNeutral(data); }
  };
  camera.getVideoTracks().forEach((t) => peer.addTrack(t, camera));
  peer.ontrack = (e) => {
    $("avatar-video").srcObject = new MediaStream([e.track]);
    countFrames($("avatar-video"));
  };
  peer.onconnectionstatechange = () => {
    if (pc !== peer) return;
    if (peer.connectionState === "connected") { state.phase = "streaming"; retries = 0; say("Streaming."); }
    if (peer.connectionState === "failed") reconnect();
  };
  await peer.setLocalDescription(await peer.createOffer());
  await waitForIce(peer);
  if (stale()) return peer.close();
  let r, answer;
  try {
    r = await fetch(api("/api/offer"), {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: peer.localDescription.sdp, type: "offer", avatar: $("avatar").value || null }),
    });
    answer = await answerOf(r);
  } catch (e) {
    if (stale()) return;
    stop(false);
    return say(`The live server does not answer (${e.message}): is \`live serve\` still running?`, true);
  }
  if (stale()) return peer.close();     // the server lets the unanswered connection go within seconds
  if (!r.ok) {
    stop(false);
    // full while reconnecting: the dropped connection's place frees within seconds, so keep trying
    if (r.status === 503 && reconnecting) return reconnect();
    return say(answer.error || r.statusText, true);
  }
  state.id = answer.id;
  await peer.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
  say("Connecting ...");
  figuresTimer = setInterval(showFigures, 1000);
}

async function matchServerPace(loopFps) {
  // A server that cannot keep up (a slow CPU, many streams) would still be sent every camera frame, and
  // decoding the surplus queues up seconds of delay before its loop sees a frame: send it what it uses.
  if (!pc || !loopFps) return;
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === "video");
  if (!sender) return;
  const cap = loopFps > 26 ? null : Math.max(5, Math.ceil(loopFps * 1.25));
  const params = sender.getParameters();
  if (!params.encodings || !params.encodings.length) return;
  const now = params.encodings[0].maxFramerate ?? null;
  if (now === cap || (now && cap && Math.abs(now - cap) < 3)) return;
  if (cap === null) delete params.encodings[0].maxFramerate; else params.encodings[0].maxFramerate = cap;
  state.sendFps = cap;
  try { await sender.setParameters(params); } catch (e) { /* a browser that cannot cap keeps sending all */ }
}

let saidAskew = "", taking = null, takingSince = 0;   // taking: the neutrals taken when the button was pressed
function showNeutral(data) {
  // the relative mode copies your motion from your neutral pose, taken in the first second: one taken turned
  // aside or mid-wink leaves the avatar askew, so say it, and offer to take it again
  const askew = (data.neutral_askew || []).join(" and ");
  if (taking !== null && (data.neutrals_taken || 0) <= taking) {        // still being taken: the button stays off
    if (performance.now() - takingSince > 10000 && takingSince) {
      takingSince = 0;
      say("No neutral pose yet: it is taken from a second with your face in view. Face the camera, eyes open.");
    }
    return;
  }
  $("recalibrate").disabled = !data.neutral_ready;
  if (taking !== null) {
    taking = null;
    saidAskew = "";
    if (!askew) return say("Neutral pose taken.");
  }
  if (askew && askew !== saidAskew)
    say(`Your neutral pose was taken with ${askew}: the avatar will look askew while you face the camera. ` +
      "Face the camera, eyes open, and press Neutral pose again.");
  saidAskew = askew;
}

function recalibrate() {
  const channel = state.channel;
  if (!channel || channel.readyState !== "open") return;
  channel.send(JSON.stringify({ recalibrate: true }));
  taking = state.stats ? state.stats.neutrals_taken || 0 : 0;
  takingSince = performance.now();
  $("recalibrate").disabled = true;
  say("Taking your neutral pose: face the camera, eyes open, and hold still for a second.");
}

function reconnect() {
  stop(false);
  if (retries >= 5) return say("The connection to the server dropped, and trying again did not work. Press Start.", true);
  retries += 1;
  say(`The connection dropped; trying again (${retries}/5) ...`, true);
  retryTimer = setTimeout(() => start(true), 2000 * retries);
}

function stop(releaseCamera = true) {
  generation += 1;
  clearTimeout(retryTimer);
  if (pc) { pc.close(); pc = null; }
  clearInterval(figuresTimer);
  if (releaseCamera && camera) { camera.getTracks().forEach((t) => t.stop()); camera = null; }
  state.phase = "idle"; state.channel = null; saidAskew = ""; taking = null;
  $("start").disabled = false; $("stop").disabled = true; $("recalibrate").disabled = true;
}

function countFrames(video) {
  // frames actually presented, for the page's own fps figure
  if (!video.requestVideoFrameCallback) return;
  const tick = () => { state.received += 1; video.requestVideoFrameCallback(tick); };
  video.requestVideoFrameCallback(tick);
}

let lastCount = 0, lastTime = performance.now();
async function showFigures() {
  const now = performance.now();
  const fps = ((state.received - lastCount) * 1000) / (now - lastTime);
  lastCount = state.received; lastTime = now;
  $("f-received").textContent = `${fps.toFixed(1)} fps`;
  const s = state.stats;
  if (s) {
    $("f-loop").textContent = `${s.loop_fps} fps`;
    $("f-added").textContent = `${s.added_ms ?? "-"} ms`;
    $("f-stages").textContent = `${s.track_ms ?? "-"} / ${s.render_ms ?? "-"} ms`;
    $("f-face").textContent = `${Math.round(100 * s.face_share)} %`;
  }
  if (!pc) return;
  const report = await pc.getStats();
  report.forEach((r) => {
    if (r.type === "candidate-pair" && r.nominated && r.currentRoundTripTime !== undefined)
      $("f-rtt").textContent = `${(r.currentRoundTripTime * 1000).toFixed(0)} ms`;
  });
}

window.grabFrame = (which = "avatar-video") => {
  const video = $(which);
  if (!video.videoWidth) return null;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return canvas.toDataURL("image/jpeg", 0.9);
};

$("start").onclick = () => { retries = 0; start(); };
$("stop").onclick = () => { stop(); say("Stopped."); };
$("recalibrate").onclick = recalibrate;
$("photo").onchange = (e) => e.target.files.length && upload(e.target.files[0]);
if (query.get("view") === "avatar") document.body.classList.add("avatar-only");
const missing = missingFeature();
if (missing) { say(missing, true); $("start").disabled = true; }
else loadAvatars().then(() => { if (query.get("autostart")) start(); })
  .catch((e) => say(`The server's avatar list did not load: ${e.message}`, true));
