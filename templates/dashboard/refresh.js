// Reloads the page when a branch of the repository moved (every 3 s); the
// page works the same without it (reload by hand).
(function () {
  var shown = document.body.getAttribute("data-version");
  var live = document.getElementById("live");
  if (live) { live.textContent = "The page reloads itself when the repository moves."; }
  // Soak times count down between reloads.
  function age(s) {
    if (s < 60) { return s + "s"; }
    if (s < 3600) { return Math.floor(s / 60) + "m" + (s % 60 ? (s % 60) + "s" : ""); }
    return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
  }
  setInterval(function () {
    document.querySelectorAll("[data-until]").forEach(function (el) {
      var until = el.getAttribute("data-until");
      var left = Math.max(0, Math.round((Date.parse(until) - Date.now()) / 1000));
      el.textContent = "soak until " + until + ": " + age(left) + " left";
    });
  }, 1000);
  setInterval(function () {
    fetch("/version", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : shown; })
      .then(function (v) { if (v.trim() !== shown) { window.location.reload(); } })
      .catch(function () {});
  }, 3000);
})();
