// The formats page: put the key typed in #api-key into every download link (a[data-feed]).
// Without this script the links keep api_key=YOUR_KEY, to be replaced by hand.
"use strict";

(function () {
  const input = document.getElementById("api-key");
  const state = document.getElementById("key-state");
  if (!input) return;
  const placeholder = input.dataset.placeholder || "YOUR_KEY";
  const links = Array.from(document.querySelectorAll("a[data-feed]"));

  function apply() {
    const key = input.value.trim() || placeholder;
    for (const a of links) {
      const url = new URL(a.getAttribute("href"), location.href);
      url.searchParams.set("api_key", key);
      a.setAttribute("href", url.pathname + url.search);
    }
    state.textContent = key === placeholder ? "" : links.length + " links now carry your key.";
  }

  input.addEventListener("input", apply);
  input.form.addEventListener("submit", (event) => event.preventDefault());
  apply();
})();
