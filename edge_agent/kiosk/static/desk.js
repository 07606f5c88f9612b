// Desk actions: each form posts its fields as JSON with the desk header (CSRF defence).
(function () {
  "use strict";
  const header = document.body.dataset.header;
  const result = document.getElementById("desk-result");
  document.querySelectorAll("form[data-action]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const fields = Object.fromEntries(new FormData(form).entries());
      const headers = { "Content-Type": "application/json" };
      headers[header] = "1";
      fetch("/desk/" + form.dataset.action, { method: "POST", headers: headers, body: JSON.stringify(fields) })
        .then((r) => r.json())
        .then((data) => { result.textContent = data.error || data.title || ""; })
        .catch(() => { result.textContent = "Lỗi kết nối / Connection error"; });
    });
  });
}());
