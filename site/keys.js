// The API keys page: list, create and revoke keys, and chart a key's usage, through
// /api/v1/keys with the session cookie. Same-origin requests only; data is written with
// textContent, never as HTML.
"use strict";

(function () {
  const API = "/api/v1/keys";
  const COOKIE = "sb-access-token";
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function call(method, path, body) {
    const init = {
      method: method,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-Requested-With": "socdef" },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(path, init);
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const message = (data.error && data.error.message) || ("HTTP " + resp.status);
      throw new ApiError(resp.status, message);
    }
    return data;
  }

  function say(text, isError) {
    const box = $("message");
    box.textContent = text;
    box.classList.toggle("error", Boolean(isError));
    box.hidden = !text;
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "—" : String(text);
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function day(iso) { return iso ? iso.slice(0, 10) : null; }

  function button(label, onClick, className) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    if (className) b.className = className;
    b.addEventListener("click", onClick);
    return b;
  }

  function revokeButton(key) {
    const b = button("Revoke", async () => {
      if (b.dataset.armed !== "1") {   // first click arms, second click revokes
        b.dataset.armed = "1";
        b.textContent = "Confirm revoke";
        b.classList.add("danger");
        return;
      }
      b.disabled = true;
      try {
        await call("DELETE", API + "/" + encodeURIComponent(key.id), { reason: "revoked on the keys page" });
        say("Revoked " + (key.name || key.key_preview) + ".");
        $("new-key").hidden = true;
        await load();
      } catch (err) { failed(err); b.disabled = false; }
    });
    b.setAttribute("aria-label", "Revoke " + (key.name || key.key_preview));
    return b;
  }

  function keyRow(key) {
    const row = document.createElement("tr");
    row.dataset.keyId = key.id;
    cell(row, key.name || "(no name)");
    cell(row, key.key_preview, "mono");
    cell(row, key.tier);
    cell(row, key.status, "status " + key.status);
    cell(row, day(key.created_at));
    cell(row, day(key.last_used_at));
    cell(row, key.total_requests.toLocaleString("en"), "num");
    const actions = cell(row, "");
    actions.textContent = "";
    actions.appendChild(button("Usage", () => showUsage(key)));
    if (key.status === "active") actions.appendChild(revokeButton(key));
    return row;
  }

  async function load() {
    let listed;
    try {
      listed = await call("GET", API);
    } catch (err) {
      if (err.status === 401) { $("account").hidden = true; $("signin").hidden = false; return; }
      throw err;
    }
    $("signin").hidden = true;
    $("account").hidden = false;
    const rows = $("key-rows");
    rows.replaceChildren(...listed.data.map(keyRow));
    $("no-keys").hidden = listed.data.length > 0;
  }

  async function create(event) {
    event.preventDefault();
    const body = { name: $("key-name").value.trim() };
    const days = $("key-days").value.trim();
    if (days) body.expires_in_days = Number(days);
    try {
      const made = await call("POST", API, body);
      $("new-key-value").textContent = made.data.key;
      $("new-key").hidden = false;
      $("create-form").reset();
      say((made.meta && made.meta.warning) || "Key created.");
      await load();
    } catch (err) { failed(err); }
  }

  function summaryFigures(data) {
    const s = data.summary, p = data.latencyPercentiles, r = data.rateLimits;
    const figures = [
      ["Requests", s.totalRequests.toLocaleString("en")],
      ["Success rate", s.successRate + " %"],
      ["Failed", s.failedRequests.toLocaleString("en")],
      ["Latency p50 / p95 / p99", p.p50 + " / " + p.p95 + " / " + p.p99 + " ms"],
      ["Indicators returned", s.totalIOCsReturned.toLocaleString("en")],
      ["Today's quota used", r.perDay.percentUsed + " % of " + r.perDay.limit.toLocaleString("en")],
      ["429 responses", data.rateLimitHits.total.toLocaleString("en")],
    ];
    const list = $("usage-summary");
    list.replaceChildren();
    for (const [name, value] of figures) {
      const dt = document.createElement("dt"); dt.textContent = name;
      const dd = document.createElement("dd"); dd.textContent = value;
      list.append(dt, dd);
    }
  }

  function svg(tag, attrs, text) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function usageChart(series) {
    const W = 720, H = 200, L = 44, B = 22, T = 8;
    const max = Math.max(1, ...series.map((d) => d.requests));
    const slot = (W - L - 8) / Math.max(1, series.length);
    const plot = H - T - B;
    const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img",
      class: "chart", "aria-label": "Requests and errors per day" });
    for (const tick of [0, max]) {
      const y = T + plot - (plot * tick) / max;
      chart.appendChild(svg("line", { class: "grid", x1: L, x2: W - 8, y1: y, y2: y }));
      chart.appendChild(svg("text", { class: "tick", x: L - 6, y: y + 4, "text-anchor": "end" }, tick));
    }
    series.forEach((d, i) => {
      const x = L + i * slot + slot * 0.1, w = slot * 0.8;
      for (const [value, css] of [[d.requests, "c0"], [d.errors, "c3"]]) {
        if (!value) continue;
        const h = (plot * value) / max;
        const bar = svg("rect", { class: css, x: x, y: T + plot - h, width: w, height: h });
        bar.appendChild(svg("title", {}, d.date + ": " + value + (css === "c0" ? " requests" : " errors")));
        chart.appendChild(bar);
      }
      if (i % 7 === (series.length - 1) % 7) {
        chart.appendChild(svg("text", { class: "tick", x: x + w / 2, y: H - 6, "text-anchor": "middle" }, d.date.slice(5)));
      }
    });
    $("usage-chart").replaceChildren(chart);
  }

  let shown = null;

  async function showUsage(key) {
    shown = key;
    const days = $("usage-days").value;
    try {
      const usage = await call("GET", API + "/" + encodeURIComponent(key.id) + "/usage?days=" + days);
      $("usage-name").textContent = key.name || key.key_preview;
      summaryFigures(usage.data);
      usageChart(usage.data.timeSeries);
      $("usage").hidden = false;
    } catch (err) { failed(err); }
  }

  function setSession(event) {
    event.preventDefault();
    const token = $("session-token").value.trim();
    const secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = COOKIE + "=" + token + "; Path=/; SameSite=Strict" + secure;
    $("session-token").value = "";
    start();
  }

  function signOut() {
    document.cookie = COOKIE + "=; Path=/; Max-Age=0; SameSite=Strict";
    $("new-key").hidden = true;
    $("usage").hidden = true;
    say("Signed out of this page.");
    start();
  }

  function failed(err) {
    if (err.status === 401) { say("Your session has expired: sign in again.", true); start(); return; }
    say(err.message, true);
  }

  function start() { load().catch(failed); }

  $("create-form").addEventListener("submit", create);
  $("session-form").addEventListener("submit", setSession);
  $("sign-out").addEventListener("click", signOut);
  // the browse page reads the key from this tab's session storage (site/browse.js)
  $("browse-with-key").addEventListener("click", () => {
    sessionStorage.setItem("socdef-api-key", $("new-key-value").textContent.trim());
  });
  $("copy-key").addEventListener("click", () => navigator.clipboard.writeText($("new-key-value").textContent));
  $("usage-days").addEventListener("change", () => { if (shown) showUsage(shown); });
  start();
})();
