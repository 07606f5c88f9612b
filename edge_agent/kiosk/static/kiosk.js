// Live kiosk: applies each state pushed by the agent over server-sent events.
(function () {
  "use strict";
  const script = document.currentScript;
  const waiting = script.dataset.waiting;
  const $ = (id) => document.getElementById(id);
  let resetTimer = null;
  let canLane = null;
  let digits = "";

  function post(path, body) {
    const headers = { "Content-Type": "application/json" };
    headers[script.dataset.header] = "1";  // custom header: no cross-site POST (CSRF)
    return fetch(path, { method: "POST", headers: headers, body: JSON.stringify(body) });
  }

  document.querySelectorAll("button.dir").forEach(function (button) {
    button.addEventListener("click", function () {
      post("/direction", { direction: button.dataset.direction });
    });
  });
  document.querySelectorAll("button.key").forEach(function (button) {
    button.addEventListener("click", function () {
      const key = button.dataset.key;
      if (key === "clear") { digits = ""; }
      else if (key === "ok") {
        if (canLane !== null) { post("/can", { lane: canLane, can: digits }); }
        digits = "";
      } else if (digits.length < 6) { digits += key; }
      $("can-digits").textContent = digits.replace(/./g, "•");
    });
  });

  // A short, distinct sound per verdict (Web Audio, nothing fetched): accepted one high tone,
  // warning two middle tones, rejected three low tones (the gate buzzer's patterns).
  const SOUNDS = { accepted: [880, 1], warning: [660, 2], rejected: [330, 3] };
  let audio = null;
  let lastAt = null;
  let primed = false;  // the state at page load is not a new verdict: no sound for it
  function beep(kind) {
    const sound = SOUNDS[kind];
    if (!sound) { return; }
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      for (let i = 0; i < sound[1]; i += 1) {
        const start = audio.currentTime + i * 0.18;
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.frequency.value = sound[0];
        gain.gain.setValueAtTime(0.2, start);
        gain.gain.setValueAtTime(0, start + 0.12);
        osc.connect(gain).connect(audio.destination);
        osc.start(start);
        osc.stop(start + 0.13);
      }
    } catch (e) { /* no audio device: the screen and the gate buzzer still say it */ }
  }

  function idle(box) {
    box.className = "verdict idle";
    $("verdict-assurance").hidden = true;
    $("verdict-photo").hidden = true;
    $("verdict-photo").removeAttribute("src");
    $("verdict-title").textContent = waiting;
    $("verdict-message").textContent = "";
    $("verdict-person").textContent = "";
  }

  function setText(id, value) {
    const el = $(id);
    if (el) { el.textContent = value; }
  }

  function apply(state) {
    setText("entries", state.entries_today);
    setText("exits", state.exits_today);
    setText("visits", state.visits_today);
    setText("stays", state.open_stays);
    const occ = $("occupancy");
    if (!occ) {
      // a desk: no occupancy
    } else if (state.occupancy === null || state.capacity === null) {
      occ.textContent = "–";
      occ.className = "big";
    } else {
      occ.textContent = state.occupancy + " / " + state.capacity +
        (state.occupancy_estimated ? " (" + occ.dataset.estimated + ")" : "");
      // Near capacity (90 %) amber, at or over capacity red.
      occ.className = "big" + (state.occupancy >= state.capacity ? " full"
        : state.occupancy >= 0.9 * state.capacity ? " near" : "");
    }
    const link = $("link");
    link.className = "link " + (state.online ? "online" : "offline");
    link.textContent = state.online ? (state.backlog ? state.backlog + " " + link.dataset.backlog : "")
                                    : link.dataset.offline + (state.backlog ? " · " + state.backlog + " " + link.dataset.backlog : "");
    $("directions").hidden = !state.choose_direction;
    $("training").hidden = !state.training;
    document.querySelectorAll("button.dir").forEach(function (button) {
      button.classList.toggle("chosen", button.dataset.direction === state.direction);
    });
    canLane = state.can_lane;
    $("canpad").hidden = canLane === null;
    if (canLane === null) { digits = ""; $("can-digits").textContent = ""; }
    const v = state.verdict;
    const box = $("verdict");
    const wasPrimed = primed;
    primed = true;
    if (!v) { clearTimeout(resetTimer); idle(box); lastAt = null; return; }
    // Counts and the link change often: a verdict already shown (or already reset to idle) is
    // not shown again, and sounds once.
    if (wasPrimed && v.at === lastAt) { return; }
    const kind = v.accepted ? (v.warning ? "warning" : "accepted") : "rejected";
    box.className = "verdict " + kind;
    if (wasPrimed) { beep(kind); }
    lastAt = v.at;
    const badge = $("verdict-assurance");
    badge.hidden = !v.assurance;
    badge.className = "assurance" + (v.assurance ? " " + v.assurance : "");
    badge.textContent = v.assurance ? (badge.getAttribute("data-" + v.assurance) || v.assurance) : "";
    const photo = $("verdict-photo");
    photo.hidden = !v.photo;
    if (v.photo) { photo.src = v.photo; } else { photo.removeAttribute("src"); }
    $("verdict-title").textContent = v.title;
    $("verdict-message").textContent = v.message || "";
    $("verdict-person").textContent = [v.masked_id, v.name].filter(Boolean).join(" · ");
    box.dataset.at = v.at;
    clearTimeout(resetTimer);
    if (canLane === null) { resetTimer = setTimeout(function () { idle(box); }, 4000); }
  }

  function connect() {
    const source = new EventSource("/events");
    source.onmessage = (e) => apply(JSON.parse(e.data));
    source.onerror = () => { source.close(); setTimeout(connect, 1000); };
  }
  connect();
}());
