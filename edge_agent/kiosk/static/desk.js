// Desk actions: each form posts its fields as JSON with the desk header (CSRF defence).
(function () {
  "use strict";
  const header = document.body.dataset.header;
  const result = document.getElementById("desk-result");
  function post(path, body) {
    const headers = { "Content-Type": "application/json" };
    headers[header] = "1";
    return fetch(path, { method: "POST", headers: headers, body: JSON.stringify(body) });
  }
  const unlock = document.getElementById("desk-unlock");
  if (unlock) {
    unlock.addEventListener("submit", function (event) {
      event.preventDefault();
      post("/desk/unlock", { pin: new FormData(unlock).get("pin") })
        .then((r) => r.json())
        .then((data) => { if (data.unlocked) { window.location.reload(); } else { result.textContent = data.error || ""; } })
        .catch(() => { result.textContent = "Lỗi kết nối / Connection error"; });
    });
  }
  const lock = document.getElementById("desk-lock");
  if (lock) {
    lock.addEventListener("click", function () { post("/desk/lock", {}).then(() => window.location.reload()); });
  }
  const trainingToggle = document.getElementById("desk-training");
  if (trainingToggle) {
    trainingToggle.addEventListener("click", function () {
      post("/desk/training", { on: trainingToggle.dataset.on === "true" })
        .then(() => window.location.reload())
        .catch(() => { result.textContent = "Lỗi kết nối / Connection error"; });
    });
  }
  const selected = document.getElementById("desk-selected");
  function refresh() {
    fetch("/desk/selected").then((r) => (r.ok ? r.json() : { selected: null })).then(function (data) {
      const s = data.selected;
      selected.textContent = s ? [s.masked_id, s.name].filter(Boolean).join(" · ") +
        " (" + Math.round(s.age_s) + " s)" : "—";
    }).catch(function () { /* the next refresh tries again */ });
  }
  if (selected) { refresh(); setInterval(refresh, 2000); }
  const stayList = document.getElementById("desk-stays");
  function refreshStays() {
    fetch("/desk/stays").then((r) => (r.ok ? r.json() : { stays: [] })).then(function (data) {
      stayList.replaceChildren();
      if (!data.stays.length) {
        const none = document.createElement("li");
        none.textContent = "Không có / None";
        stayList.appendChild(none);
      }
      data.stays.forEach(function (stay) {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "stay";
        button.disabled = !stay.without_card;
        button.textContent = [stay.masked_id || "(chạm thẻ / tap card)", stay.name,
          stay.ward_or_room, "→ " + stay.expected_departure, stay.reason_code]
          .filter(Boolean).join(" · ");
        button.addEventListener("click", function () {
          post("/desk/" + stayList.dataset.action, { stay_id: stay.stay_id })
            .then((r) => r.json())
            .then((d) => { result.textContent = d.error || d.title || ""; refreshStays(); })
            .catch(() => { result.textContent = "Lỗi kết nối / Connection error"; });
        });
        item.appendChild(button);
        stayList.appendChild(item);
      });
    }).catch(function () { /* the next refresh tries again */ });
  }
  if (stayList) { refreshStays(); setInterval(refreshStays, 5000); }
  document.querySelectorAll("form[data-action]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const fields = Object.fromEntries(new FormData(form).entries());
      post("/desk/" + form.dataset.action, fields)
        .then((r) => r.json())
        .then((data) => {
          result.textContent = data.error || data.title || "";
          result.scrollIntoView({ block: "nearest" });  // the forms scroll on an 800×480 screen
          if (stayList) { refreshStays(); }
        })
        .catch(() => { result.textContent = "Lỗi kết nối / Connection error"; });
    });
  });
}());
