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

  function idle(box) {
    box.className = "verdict idle";
    $("verdict-title").textContent = waiting;
    $("verdict-message").textContent = "";
    $("verdict-person").textContent = "";
  }

  function apply(state) {
    $("entries").textContent = state.entries_today;
    $("exits").textContent = state.exits_today;
    const occ = $("occupancy");
    if (state.occupancy === null || state.capacity === null) {
      occ.textContent = "–";
    } else {
      occ.textContent = state.occupancy + " / " + state.capacity +
        (state.occupancy_estimated ? " (" + occ.dataset.estimated + ")" : "");
    }
    const link = $("link");
    link.className = "link " + (state.online ? "online" : "offline");
    link.textContent = state.online ? (state.backlog ? state.backlog + " " + link.dataset.backlog : "")
                                    : link.dataset.offline + (state.backlog ? " · " + state.backlog + " " + link.dataset.backlog : "");
    $("directions").hidden = !state.choose_direction;
    document.querySelectorAll("button.dir").forEach(function (button) {
      button.classList.toggle("chosen", button.dataset.direction === state.direction);
    });
    canLane = state.can_lane;
    $("canpad").hidden = canLane === null;
    if (canLane === null) { digits = ""; $("can-digits").textContent = ""; }
    const v = state.verdict;
    const box = $("verdict");
    if (!v) { clearTimeout(resetTimer); idle(box); return; }
    box.className = "verdict " + (v.accepted ? (v.warning ? "warning" : "accepted") : "rejected");
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
