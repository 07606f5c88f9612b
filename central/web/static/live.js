// Live dashboard: replace the #live fragment with each server-sent "update" event.
(function () {
  "use strict";
  var box = document.getElementById("live");
  if (!box || !window.EventSource) { return; }
  var dot = document.querySelector(".live-dot");
  var source = new EventSource(box.getAttribute("data-stream"));
  source.addEventListener("update", function (event) {
    var payload = JSON.parse(event.data);
    box.innerHTML = payload.html;
    box.setAttribute("data-updated", payload.data.at);
    if (dot) { dot.classList.add("on"); }
  });
  // The session ended (logout, password change, deactivation): stop and show the login page.
  source.addEventListener("logout", function () {
    source.close();
    window.location.reload();
  });
  source.addEventListener("error", function () { if (dot) { dot.classList.remove("on"); } });
}());
