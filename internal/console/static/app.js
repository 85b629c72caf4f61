// Re-fetches the console's body every data-refresh-ms milliseconds and
// swaps it in; a failed fetch is shown in the header, and retried.
(function () {
  "use strict";
  var main = document.getElementById("console");
  var status = document.getElementById("refresh-status");
  var every = Number(main.getAttribute("data-refresh-ms")) || 5000;
  function tick() {
    fetch("/console/body", { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        return r.text();
      })
      .then(function (html) {
        main.innerHTML = html;
        status.textContent = "";
      })
      .catch(function (e) {
        status.textContent = "refresh failed (" + e.message + "); retrying";
      })
      .then(function () {
        setTimeout(tick, every);
      });
  }
  setTimeout(tick, every);
})();
