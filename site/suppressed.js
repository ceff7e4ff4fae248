// The suppression report page: GET /api/v1/iocs/suppressed with the visitor's API key (the
// same sessionStorage entry as the browse page, sent only to this origin). Data is written with
// textContent, never as HTML; article links are built only to http(s).
"use strict";

(function () {
  const STORE = "socdef-api-key";
  const $ = (id) => document.getElementById(id);

  function key() { return sessionStorage.getItem(STORE) || ""; }

  function say(text, isError) {
    const box = $("report-message");
    box.textContent = text || "";
    box.classList.toggle("error", Boolean(isError));
    box.hidden = !text;
  }

  function when(iso) { return iso ? iso.slice(0, 16).replace("T", " ") : "—"; }

  function cell(row, content) {
    const td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = content === null || content === undefined || content === "" ? "—" : String(content);
    row.appendChild(td);
  }

  function articleLink(src) {
    const title = (src && (src.article_title || src.article_id)) || "article";
    let href = null;
    try {
      const url = new URL(src && src.article_url);
      if (url.protocol === "https:" || url.protocol === "http:") href = url.href;
    } catch (_) { href = null; }
    if (!href) return document.createTextNode(title);
    const a = document.createElement("a");
    a.textContent = title;
    a.href = href;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    return a;
  }

  function valueLink(item) {
    const a = document.createElement("a");
    a.textContent = item.value;
    a.href = "/docs/browse/#q=" + encodeURIComponent(item.value);
    a.className = "mono";
    return a;
  }

  function show(report) {
    const data = report.data;
    $("report-total").textContent = data.total + " held back (" + data.by_status.suppressed +
      " suppressed, " + data.by_status.withdrawn + " withdrawn) in the " +
      report.meta.lookback_days + "-day window of the " + report.meta.tier + " tier; build " +
      report.meta.feed_version + ".";
    const lists = $("report-list-rows");
    lists.replaceChildren();
    for (const [name, count] of Object.entries(data.by_list)) {
      const row = document.createElement("tr");
      cell(row, name);
      cell(row, count);
      lists.appendChild(row);
    }
    const rows = $("report-rows");
    rows.replaceChildren();
    for (const item of data.items) {
      const row = document.createElement("tr");
      row.className = "held";
      cell(row, item.type);
      cell(row, valueLink(item));
      cell(row, item.status);
      cell(row, item.held_by.join(", "));
      cell(row, when(item.changed_at));
      cell(row, articleLink(item.source));
      cell(row, item.source && item.source.feed_name);
      rows.appendChild(row);
    }
    $("report").hidden = false;
  }

  async function load() {
    if (!key()) { $("report").hidden = true; return; }
    say("Loading…");
    try {
      const resp = await fetch("/api/v1/iocs/suppressed", {
        credentials: "omit",
        headers: { "Accept": "application/json", "X-API-Key": key() },
      });
      const body = await resp.json().catch(() => ({}));
      if (!resp.ok) {
        if (resp.status === 401) { sessionStorage.removeItem(STORE); showKeyState(); }
        say((body.error && body.error.message) || ("HTTP " + resp.status), true);
        return;
      }
      say("");
      show(body);
    } catch (err) {
      say(String(err.message || err), true);
    }
  }

  function showKeyState() {
    $("report-forget").hidden = !key();
  }

  $("report-key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(STORE, $("report-key").value.trim());
    $("report-key").value = "";
    showKeyState();
    load();
  });
  $("report-forget").addEventListener("click", () => {
    sessionStorage.removeItem(STORE);
    showKeyState();
    $("report").hidden = true;
  });
  showKeyState();
  load();
})();
