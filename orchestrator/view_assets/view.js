// reason view: search, expand and collapse; no network. Errors are noted on <body> so a headless test sees them.
window.addEventListener("error", function (e) {
  document.body.dataset.jsErrors = (document.body.dataset.jsErrors || "") + e.message + ";";
});
(function () {
  var search = document.getElementById("search");
  var hits = document.getElementById("hits");
  var items = Array.prototype.slice.call(document.querySelectorAll("[data-search]"));
  function each(open) {
    document.querySelectorAll("details").forEach(function (d) { d.open = open; });
  }
  document.getElementById("expand").addEventListener("click", function () { each(true); });
  document.getElementById("collapse").addEventListener("click", function () { each(false); });
  search.addEventListener("input", function () {
    var text = search.value.trim().toLowerCase();
    var found = 0;
    items.forEach(function (el) {
      var hit = !text || el.textContent.toLowerCase().indexOf(text) >= 0;
      el.classList.toggle("miss", !hit);
      var d = el.querySelector("details");
      if (d && text) { d.open = hit; }
      if (hit && text) { found += 1; }
    });
    hits.textContent = text ? found + " matching" : "";
  });
  var q = new URLSearchParams(window.location.search).get("q");
  if (q) { search.value = q; search.dispatchEvent(new Event("input")); }
  document.body.dataset.ready = "1";
})();
