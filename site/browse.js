// The browse page: the latest indicators (GET /api/v1/iocs) and one indicator's story
// (GET /api/v1/iocs/search?q=, shown at #q=<value>), with the visitor's API key. The key is
// kept in this tab's sessionStorage and sent only to this origin. Data is written with
// textContent, never as HTML; links are built only to http(s) and to nvd.nist.gov.
"use strict";

(function () {
  const STORE = "socdef-api-key";
  const PAGE = 50;
  const $ = (id) => document.getElementById(id);
  let names = null;  // ATT&CK technique id -> name, from /static/attack.json
  let offset = 0;

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function key() { return sessionStorage.getItem(STORE) || ""; }

  async function api(path) {
    const resp = await fetch(path, {
      credentials: "omit",
      headers: { "Accept": "application/json", "X-API-Key": key() },
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      throw new ApiError(resp.status, (data.error && data.error.message) || ("HTTP " + resp.status));
    }
    return data;
  }

  async function techniqueNames() {
    if (names === null) {
      const resp = await fetch("/static/attack.json");
      names = resp.ok ? await resp.json() : {};
    }
    return names;
  }

  function say(text, isError) {
    const box = $("browse-message");
    box.textContent = text || "";
    box.classList.toggle("error", Boolean(isError));
    box.hidden = !text;
  }

  function failed(err) {
    if (err.status === 401) {
      sessionStorage.removeItem(STORE);
      showKeyState();
    }
    say(err.message, true);
  }

  function when(iso) { return iso ? iso.slice(0, 16).replace("T", " ") : "—"; }

  function cell(row, content, className) {
    const td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = content === null || content === undefined || content === "" ? "—" : String(content);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function link(href, text, external) {
    const a = document.createElement("a");
    a.textContent = text;
    a.href = href;
    if (external) { a.rel = "noopener noreferrer"; a.target = "_blank"; }
    return a;
  }

  function safeUrl(raw) {
    try {
      const url = new URL(raw);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (_) { return null; }
  }

  function articleLink(src) {
    const title = (src && (src.article_title || src.article_id)) || "article";
    const href = src && safeUrl(src.article_url);
    return href ? link(href, title, true) : document.createTextNode(title);
  }

  function indicatorLink(ioc) {
    const a = link("#q=" + encodeURIComponent(ioc.value), ioc.value);
    a.className = "mono";
    return a;
  }

  function iocRow(ioc) {
    const row = document.createElement("tr");
    cell(row, ioc.type);
    cell(row, indicatorLink(ioc), "value");
    cell(row, when(ioc.first_seen), "when");
    cell(row, when(ioc.last_seen), "when");
    cell(row, ioc.confidence);
    cell(row, ioc.status, "status " + ioc.status);
    cell(row, articleLink(ioc.source), "source");
    return row;
  }

  async function loadLatest(more) {
    offset = more ? offset + PAGE : 0;
    const params = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
    if ($("browse-type").value) params.set("type", $("browse-type").value);
    params.set("status", $("browse-status").value);
    const listed = await api("/api/v1/iocs?" + params.toString());
    const rows = listed.data.map(iocRow);
    if (more) $("ioc-rows").append(...rows);
    else $("ioc-rows").replaceChildren(...rows);
    const shown = offset + listed.data.length, total = listed.meta.total;
    $("browse-total").textContent = total
      ? "Showing " + shown.toLocaleString("en") + " of " + total.toLocaleString("en") + " indicators."
      : "No indicator matches.";
    $("browse-more").hidden = shown >= total;
    say("");
  }

  function techniqueItem(id) {
    const li = document.createElement("li");
    const path = id.split(".").map(encodeURIComponent).join("/");
    li.appendChild(link("https://attack.mitre.org/techniques/" + path + "/", id, true));
    const name = names[id];
    li.appendChild(document.createTextNode(name ? " " + name : " (not in the bundled ATT&CK table)"));
    return li;
  }

  function cveItem(id) {
    const li = document.createElement("li");
    li.appendChild(link("https://nvd.nist.gov/vuln/detail/" + encodeURIComponent(id), id, true));
    return li;
  }

  function figures(list, pairs) {
    list.replaceChildren();
    for (const [name, value] of pairs) {
      const dt = document.createElement("dt"); dt.textContent = name;
      const dd = document.createElement("dd"); dd.textContent = value;
      list.append(dt, dd);
    }
  }

  async function showIndicator(value) {
    const [found] = await Promise.all([
      api("/api/v1/iocs/search?" + new URLSearchParams({ q: value }).toString()),
      techniqueNames(),
    ]);
    const data = found.data;
    $("ind-value").textContent = value;
    $("latest").hidden = true;
    $("indicator").hidden = false;
    if (!data.found) {
      figures($("ind-summary"), [["Known to this feed", "no"]]);
      $("ind-rows").replaceChildren();
      $("ind-techniques-box").hidden = $("ind-cves-box").hidden = $("ind-related-box").hidden = true;
      say("This feed holds no indicator " + value + ".");
      return;
    }
    const m = data.matches;
    const first = m.map((r) => r.first_seen).sort()[0];
    const last = m.map((r) => r.last_seen).sort().slice(-1)[0];
    figures($("ind-summary"), [
      ["Type", m[0].type],
      ["Sightings (articles)", String(m.length)],
      ["First seen", when(first)],
      ["Last seen", when(last)],
      ["Status", Array.from(new Set(m.map((r) => r.status))).join(", ")],
      ["Warninglists", Array.from(new Set(m.flatMap((r) => r.warnings || []))).join(", ") || "none"],
    ]);
    $("ind-rows").replaceChildren(...m.map((r) => {
      const row = document.createElement("tr");
      cell(row, articleLink(r.source));
      cell(row, r.source && r.source.feed_name);
      cell(row, when(r.first_seen));
      cell(row, when(r.last_seen));
      cell(row, r.confidence);
      cell(row, r.status, "status " + r.status);
      cell(row, r.context, "context");
      return row;
    }));
    const all = m.concat(data.relatedIOCs);
    const techniques = new Set(m.flatMap((r) => r.mitre_techniques || []));
    for (const r of all) if (r.type === "mitre_attack") techniques.add(r.value);
    const cves = new Set(all.filter((r) => r.type === "cve").map((r) => r.value));
    $("ind-techniques").replaceChildren(...Array.from(techniques).sort().map(techniqueItem));
    $("ind-techniques-box").hidden = techniques.size === 0;
    $("ind-cves").replaceChildren(...Array.from(cves).sort().map(cveItem));
    $("ind-cves-box").hidden = cves.size === 0;
    $("ind-related-rows").replaceChildren(...data.relatedIOCs.map((r) => {
      const row = document.createElement("tr");
      cell(row, r.type);
      cell(row, indicatorLink(r), "value");
      cell(row, r.confidence);
      cell(row, articleLink(r.source));
      return row;
    }));
    $("ind-related-box").hidden = data.relatedIOCs.length === 0;
    say("");
  }

  function wanted() {
    const hash = location.hash.slice(1);
    if (!hash.startsWith("q=")) return null;
    try { return decodeURIComponent(hash.slice(2)); } catch (_) { return hash.slice(2); }
  }

  function showKeyState() {
    const have = Boolean(key());
    $("browse-forget").hidden = !have;
    $("browse-key").required = !have;
    $("browse-key").placeholder = have ? "key in use for this tab" : "sk_live_…";
  }

  function route() {
    if (!key()) {
      $("latest").hidden = $("indicator").hidden = true;
      say("Give your API key to browse the indicators.");
      return;
    }
    const value = wanted();
    if (value) { showIndicator(value).catch(failed); return; }
    $("indicator").hidden = true;
    $("latest").hidden = false;
    loadLatest(false).catch(failed);
  }

  $("browse-key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const typed = $("browse-key").value.trim();
    if (typed) sessionStorage.setItem(STORE, typed);
    $("browse-key").value = "";
    showKeyState();
    route();
  });
  $("browse-forget").addEventListener("click", () => {
    sessionStorage.removeItem(STORE);
    showKeyState();
    route();
  });
  $("browse-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    const lookup = $("browse-lookup").value.trim();
    if (lookup.length >= 2) { location.hash = "q=" + encodeURIComponent(lookup); return; }
    loadLatest(false).catch(failed);
  });
  $("browse-type").addEventListener("change", () => loadLatest(false).catch(failed));
  $("browse-status").addEventListener("change", () => loadLatest(false).catch(failed));
  $("browse-more").addEventListener("click", () => loadLatest(true).catch(failed));
  $("ind-back").addEventListener("click", (event) => {
    event.preventDefault();
    history.pushState(null, "", location.pathname);
    route();
  });
  window.addEventListener("hashchange", route);
  showKeyState();
  route();
})();
