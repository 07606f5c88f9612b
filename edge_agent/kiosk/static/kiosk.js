// Live kiosk: applies each state pushed by the agent over server-sent events.
(function () {
  "use strict";
  const script = document.currentScript;
  const waiting = script.dataset.waiting;
  const $ = (id) => document.getElementById(id);
  let resetTimer = null;

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
    const v = state.verdict;
    const box = $("verdict");
    if (!v) { return; }
    box.className = "verdict " + (v.accepted ? (v.warning ? "warning" : "accepted") : "rejected");
    $("verdict-title").textContent = v.title;
    $("verdict-message").textContent = v.message || "";
    $("verdict-person").textContent = [v.masked_id, v.name].filter(Boolean).join(" · ");
    box.dataset.at = v.at;
    clearTimeout(resetTimer);
    resetTimer = setTimeout(function () {
      box.className = "verdict idle";
      $("verdict-title").textContent = waiting;
      $("verdict-message").textContent = "";
      $("verdict-person").textContent = "";
    }, 4000);
  }

  function connect() {
    const source = new EventSource("/events");
    source.onmessage = (e) => apply(JSON.parse(e.data));
    source.onerror = () => { source.close(); setTimeout(connect, 1000); };
  }
  connect();
}());
