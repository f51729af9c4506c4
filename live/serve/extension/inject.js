// Runs in the page's own JS world ("world": "MAIN") because a call app only
// sees patches made to its own navigator.mediaDevices. This world has no
// chrome.* APIs, so the offer travels to bridge.js by window.postMessage, and
// the token never enters the page: the bridge adds it on its side.
(() => {
  "use strict";

  const DEVICE_ID = "live-avatar";
  const LABEL = "live avatar";
  const PAGE = "live-avatar-page";
  const EXTENSION = "live-avatar-extension";
  const ICE_TIMEOUT_MS = 5000;
  const ANSWER_TIMEOUT_MS = 15000;

  // Insecure pages have no mediaDevices; a content script that throws here
  // would only add noise to the page's console, so just leave.
  const devices = typeof navigator === "object" ? navigator.mediaDevices : undefined;
  if (!devices || typeof devices.getUserMedia !== "function"
      || typeof devices.enumerateDevices !== "function") return;
  const PATCHED = Symbol.for("live-avatar.patched");
  if (devices[PATCHED]) return;

  const realEnumerate = devices.enumerateDevices;
  const realGetUserMedia = devices.getUserMedia;

  // Method shorthand gives the wrappers the native names and no .prototype;
  // rest parameters keep .length at 0 like the originals.
  const wrappers = {
    enumerateDevices(...args) {
      return realEnumerate.apply(this, args).then(withAvatar);
    },
    getUserMedia(...args) {
      const constraints = args[0];
      if (!constraints || !wantsAvatar(constraints.video)) {
        return realGetUserMedia.apply(this, args);
      }
      return avatarStream(this, constraints);
    },
  };

  try {
    for (const name of Object.keys(wrappers)) replace(name, wrappers[name]);
    Object.defineProperty(devices, PATCHED, {value: true});
  } catch (err) {
    // A page that froze mediaDevices first keeps its real cameras only.
  }

  // Patch where the method really lives (MediaDevices.prototype) so `this`
  // stays whatever the app calls it on, as with the native method.
  function replace(name, wrapper) {
    let owner = devices;
    while (owner && !Object.prototype.hasOwnProperty.call(owner, name)) {
      owner = Object.getPrototypeOf(owner);
    }
    owner = owner || devices;
    const desc = Object.getOwnPropertyDescriptor(owner, name)
      || {writable: true, enumerable: true, configurable: true};
    Object.defineProperty(owner, name, {...desc, value: wrapper});
  }

  function withAvatar(list) {
    if (!Array.isArray(list) || list.some((d) => d && d.deviceId === DEVICE_ID)) return list;
    return [...list, fakeDevice()];
  }

  // Apps test `instanceof MediaDeviceInfo` and call toJSON/getCapabilities, so
  // the entry borrows the real prototype (InputDeviceInfo for cameras, which
  // extends MediaDeviceInfo) and shadows its getters, which would throw on a
  // non-native object.
  function fakeDevice() {
    const fields = {deviceId: DEVICE_ID, kind: "videoinput", label: LABEL, groupId: DEVICE_ID};
    const extras = {
      toJSON() { return {...fields}; },
      getCapabilities() {
        return {
          deviceId: DEVICE_ID, groupId: DEVICE_ID, facingMode: [],
          width: {min: 1, max: 1920}, height: {min: 1, max: 1080},
          frameRate: {min: 1, max: 30}, resizeMode: ["none", "crop-and-scale"],
        };
      },
    };
    try {
      const cls = typeof InputDeviceInfo === "function" ? InputDeviceInfo : MediaDeviceInfo;
      const device = Object.create(cls.prototype);
      for (const [key, value] of Object.entries(fields)) {
        Object.defineProperty(device, key, {get: () => value, enumerable: true, configurable: true});
      }
      defineMethods(device, extras);
      return device;
    } catch (err) {
      return {...fields, ...extras};
    }
  }

  function defineMethods(target, methods) {
    for (const [key, value] of Object.entries(methods)) {
      Object.defineProperty(target, key, {value, writable: true, configurable: true});
    }
  }

  const idsOf = (v) => (typeof v === "string" ? [v] : Array.isArray(v) ? v : []);

  // deviceId may be "id", ["id", ...], {exact: ...} or {ideal: ...}.
  function mentions(value) {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      return [value.exact, value.ideal].some((v) => idsOf(v).includes(DEVICE_ID));
    }
    return idsOf(value).includes(DEVICE_ID);
  }

  // Only an explicit pick selects the avatar; {video: true} stays the real camera.
  function wantsAvatar(video) {
    if (!video || typeof video !== "object") return false;
    return mentions(video.deviceId)
      || (Array.isArray(video.advanced) && video.advanced.some((s) => s && mentions(s.deviceId)));
  }

  // The real camera is asked for with the app's size/rate wishes but without
  // our id, which no real device has.
  function cameraOnly(video) {
    const rest = {...video};
    delete rest.deviceId;
    if (mentions(rest.groupId)) delete rest.groupId;
    if (Array.isArray(rest.advanced)) {
      rest.advanced = rest.advanced
        .map((set) => { const s = {...set}; delete s.deviceId; delete s.groupId; return s; })
        .filter((s) => Object.keys(s).length);
      if (!rest.advanced.length) delete rest.advanced;
    }
    return Object.keys(rest).length ? rest : true;
  }

  // getUserMedia rejects with DOMExceptions; apps branch on err.name.
  function notReadable(message) {
    try {
      return new DOMException(message, "NotReadableError");
    } catch (err) {
      return Object.assign(new Error(message), {name: "NotReadableError"});
    }
  }

  async function avatarStream(mediaDevices, constraints) {
    const request = {video: cameraOnly(constraints.video)};
    if (constraints.audio) request.audio = constraints.audio;
    const camera = await realGetUserMedia.call(mediaDevices, request);
    let pc = null;
    const teardown = () => {
      camera.getVideoTracks().forEach((t) => t.stop());
      if (pc) pc.close();
    };
    try {
      pc = new RTCPeerConnection({iceServers: []});
      const remoteVideo = new Promise((resolve) => {
        pc.addEventListener("track", (e) => { if (e.track.kind === "video") resolve(e.track); });
      });
      pc.addTrack(camera.getVideoTracks()[0], camera);
      await pc.setLocalDescription(await pc.createOffer());
      // The server gets one offer with every candidate in it: no trickle ICE,
      // so the signalling stays a single request.
      await iceGathered(pc, ICE_TIMEOUT_MS);
      const started = Date.now();
      const local = pc.localDescription;
      const reply = await ask({sdp: local.sdp, type: local.type, avatar: null}, ANSWER_TIMEOUT_MS);
      const where = reply.server ? `the live server at ${reply.server}` : "the live server";
      if (!reply.ok) {
        const error = String(reply.error || "unknown error");
        // Network failures already name the URL; the server's own errors don't.
        throw notReadable(reply.server && error.includes(reply.server)
          ? `live avatar: ${error}` : `live avatar: ${where} refused the call: ${error}`);
      }
      if (!reply.body || typeof reply.body.sdp !== "string") {
        throw notReadable(`live avatar: ${where} sent no SDP answer`);
      }
      await pc.setRemoteDescription({sdp: reply.body.sdp, type: reply.body.type});
      const track = await withTimeout(remoteVideo, ANSWER_TIMEOUT_MS - (Date.now() - started),
        () => notReadable(`live avatar: ${where} did not answer within ${ANSWER_TIMEOUT_MS / 1000} s; start it with \`live serve\``));
      // A dead link would otherwise leave the camera light on for nothing.
      pc.addEventListener("connectionstatechange", () => {
        if (pc.connectionState === "failed" || pc.connectionState === "closed") teardown();
      });
      return new MediaStream([disguise(track, teardown), ...camera.getAudioTracks()]);
    } catch (err) {
      teardown();
      camera.getAudioTracks().forEach((t) => t.stop());
      throw err;
    }
  }

  function iceGathered(pc, ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", check);
        pc.removeEventListener("icecandidate", onCandidate);
        resolve();
      };
      const check = () => { if (pc.iceGatheringState === "complete") done(); };
      const onCandidate = (e) => { if (!e.candidate) done(); };
      // Past the timeout, send what was gathered: host candidates come first
      // and are all a local server needs.
      const timer = setTimeout(done, ms);
      pc.addEventListener("icegatheringstatechange", check);
      pc.addEventListener("icecandidate", onCandidate);
      check();
    });
  }

  function withTimeout(promise, ms, makeError) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(makeError()), Math.max(0, ms));
      promise.then(
        (value) => { clearTimeout(timer); resolve(value); },
        (err) => { clearTimeout(timer); reject(err); });
    });
  }

  let counter = 0;
  const session = Math.random().toString(36).slice(2);

  // One request/reply over window messages; the id pairs them because other
  // frames' and calls' replies share the same channel.
  function ask(body, ms) {
    const id = `${session}-${++counter}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        window.removeEventListener("message", onMessage);
        reject(notReadable(`live avatar: the live server did not answer within ${ms / 1000} s `
          + "(is the live avatar extension enabled?); start it with `live serve`"));
      }, ms);
      function onMessage(event) {
        const data = event.data;
        if (event.source !== window || !data || data.source !== EXTENSION || data.id !== id) return;
        clearTimeout(timer);
        window.removeEventListener("message", onMessage);
        resolve(data);
      }
      window.addEventListener("message", onMessage);
      window.postMessage({source: PAGE, id, kind: "offer", body}, "*");
    });
  }

  // The app sees a remote WebRTC track; make it read like the device it picked,
  // and free the real camera only once the app and every clone let go of it.
  function disguise(track, teardown) {
    let open = 0;
    const adopt = (t) => {
      open += 1;
      let stopped = false;
      const native = {stop: t.stop, clone: t.clone, getSettings: t.getSettings};
      defineMethods(t, {
        stop() {
          native.stop.call(this);
          if (stopped) return;
          stopped = true;
          open -= 1;
          if (open === 0) teardown();
        },
        clone() { return adopt(native.clone.call(this)); },
        getSettings() {
          return {...native.getSettings.call(this), deviceId: DEVICE_ID, groupId: DEVICE_ID};
        },
      });
      Object.defineProperty(t, "label", {get: () => LABEL, configurable: true});
      return t;
    };
    return adopt(track);
  }
})();
