// Reloads the page when a branch of the repository moved (every 3 s); the
// page works the same without it (reload by hand).
(function () {
  var shown = document.body.getAttribute("data-version");
  var live = document.getElementById("live");
  if (live) { live.textContent = "The page reloads itself when the repository moves."; }
  setInterval(function () {
    fetch("/version", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : shown; })
      .then(function (v) { if (v.trim() !== shown) { window.location.reload(); } })
      .catch(function () {});
  }, 3000);
})();
