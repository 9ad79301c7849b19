// platestream console: helpers shared by every page (no framework, no build step).
"use strict";

const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content || "";

// fetch() for the JSON API with the console's session; throws Error(detail) on non-2xx.
async function api(method, url, body, contentType) {
  const headers = {"X-CSRF-Token": csrfToken};
  if (body !== undefined && !(body instanceof FormData)) {
    headers["Content-Type"] = contentType || "application/json";
    if (!contentType) body = JSON.stringify(body);
  }
  const resp = await fetch(url, {method, headers, body, credentials: "same-origin"});
  if (resp.status === 401 || (resp.status === 403 && csrfToken)) {
    location.href = "/ui/login?next=" + encodeURIComponent(location.pathname + location.search);
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = {detail: text}; }
  if (!resp.ok) throw new Error((data && (data.detail || data.error)) || `HTTP ${resp.status}`);
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function localTime(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

// Times are rendered in UTC; show the viewer's local time on hover.
function decorateTimes(root) {
  for (const t of (root || document).querySelectorAll("time[datetime]")) {
    t.title = localTime(t.getAttribute("datetime"));
  }
}

// Table rows open their event.
document.addEventListener("click", (e) => {
  const row = e.target.closest("tr[data-href]");
  if (row && !e.target.closest("a, button")) location.href = row.dataset.href;
});

// Search box: fuzzy suggestions from the API as you type; Enter searches the events page.
(function searchBox() {
  const input = document.getElementById("search");
  const list = document.getElementById("suggest");
  if (!input || !list) return;
  let timer = null, seq = 0;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, 200);
  });
  input.addEventListener("keydown", (e) => { if (e.key === "Escape") list.hidden = true; });
  document.addEventListener("click", (e) => { if (!e.target.closest(".search")) list.hidden = true; });
  async function suggest() {
    const q = input.value.trim();
    const mine = ++seq;
    if (q.replace(/[^0-9a-z*]/gi, "").length < 2) { list.hidden = true; return; }
    let data;
    try { data = await api("GET", "/api/v1/events?limit=50&plate=" + encodeURIComponent(q)); }
    catch (err) { return; }
    if (mine !== seq) return;
    const seen = new Map();
    for (const ev of data.events) {
      const p = ev.plate.toUpperCase();
      if (!seen.has(p)) seen.set(p, {count: 0, ev});
      seen.get(p).count++;
    }
    list.replaceChildren();
    for (const [plate, {count, ev}] of [...seen].slice(0, 8)) {
      const a = el("a", {href: "/ui/events?plate=" + encodeURIComponent(plate)},
        el("span", {class: "plate"}, plate), " ",
        el("span", {class: "muted"}, `${count}× · last ${ev.camera}`));
      list.append(el("li", {}, a));
    }
    if (!seen.size) list.append(el("li", {class: "muted"}, "no match"));
    list.hidden = false;
  }
})();

decorateTimes();
