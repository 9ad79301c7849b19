// Live overview and health page: one Server-Sent Events stream (/ui/live) updates them.
"use strict";

(function live() {
  const stateEl = document.getElementById("live-state");
  const feed = document.getElementById("feed");
  const tpl = document.getElementById("plate-item");
  const MAX_FEED = 30, MAX_LAST = 6;
  const RUNNING = new Set(["streaming"]);

  function setState(ok, text) {
    if (!stateEl) return;
    stateEl.textContent = text;
    stateEl.classList.toggle("on", ok);
  }

  function refreshThumb(card, state) {
    const img = card.querySelector("img[data-src]");
    // An ended or disconnected camera keeps its last picture; a running one refreshes it.
    if (!img || (img.classList.contains("loaded") && !RUNNING.has(state))) return;
    const next = new Image();
    next.onload = () => { img.src = next.src; img.classList.add("loaded"); };
    next.src = img.dataset.src + "?t=" + Date.now();
  }

  function onStatus(status) {
    for (const [name, cam] of Object.entries(status.cameras || {})) {
      const card = document.querySelector(`.camera[data-camera="${CSS.escape(name)}"]`);
      if (!card) continue;
      for (const field of ["fps", "frames_analysed", "frames_dropped", "events"]) {
        const node = card.querySelector(`[data-field="${field}"]`);
        if (node) node.textContent = cam[field];
      }
      const st = card.querySelector('[data-field="state"]');
      st.textContent = cam.state;
      st.className = "state state-" + cam.state;
      const err = card.querySelector('[data-field="last_error"]');
      err.textContent = cam.last_error || "";
      err.hidden = !cam.last_error;
      refreshThumb(card, cam.state);
    }
    for (const [name, o] of Object.entries(status.outputs || {})) {
      const row = document.querySelector(`tr[data-output="${CSS.escape(name)}"]`);
      if (!row) continue;
      for (const field of ["pending", "failed", "delivered", "last_error"]) {
        const node = row.querySelector(`[data-field="${field}"]`);
        if (node) node.textContent = o[field] ?? "";
      }
      row.className = o.failed ? "bad" : (o.pending ? "warn" : "good");
    }
  }

  function plateItem(ev, withCrop) {
    const li = tpl.content.firstElementChild.cloneNode(true);
    li.querySelector("a").href = "/ui/events/" + encodeURIComponent(ev.event_id);
    li.querySelector(".plate").textContent = ev.plate.toUpperCase();
    const img = li.querySelector("img.crop");
    if (withCrop && ev.images && ev.images.plate) { img.src = ev.images.plate; img.alt = "plate"; }
    else img.remove();
    const badge = li.querySelector(".badge");
    if (ev.known_plate) {
      badge.textContent = ev.known_plate.list;
      badge.title = ev.known_plate.name || ev.known_plate.plate;
      badge.hidden = false;
    } else badge.remove();
    li.querySelector(".cam").textContent = withCrop ? (ev.node ? ev.node + " · " : "") + ev.camera : "";
    const t = li.querySelector("time");
    t.setAttribute("datetime", ev.time);
    t.textContent = ev.time.replace("T", " ").slice(0, 19);
    t.title = localTime(ev.time);
    li.classList.add("new");
    return li;
  }

  // Insert newest first, once per event id, however it arrived (page render, SSE, catch-up);
  // a correction (same event id, a better read) replaces the item.
  function insert(list, ev, withCrop, max) {
    if (!list || !tpl) return;
    const old = list.querySelector(`li[data-event="${CSS.escape(ev.event_id)}"]`);
    if (old) {
      if (!ev.data || !ev.data.updated) return;
      old.remove();
    }
    const li = plateItem(ev, withCrop);
    li.dataset.event = ev.event_id;
    const after = [...list.children].find((c) => (c.querySelector("time")?.getAttribute("datetime") || "") < ev.time);
    list.insertBefore(li, after || null);
    while (list.children.length > max) list.lastElementChild.remove();
  }

  function onPlate(ev) {
    insert(feed, ev, true, MAX_FEED);
    insert(document.querySelector(`.last-plates[data-camera="${CSS.escape(ev.camera)}"]`), ev,
           false, MAX_LAST);
  }

  // Events stored between the page's render and the stream's (re)connection.
  async function catchUp() {
    if (!feed) return;
    try {
      const data = await api("GET", "/api/v1/events?limit=" + MAX_FEED);
      data.events.forEach(onPlate);
    } catch (e) { /* the store is off: nothing to catch up */ }
  }

  document.querySelectorAll(".camera").forEach((card) => refreshThumb(card, "streaming"));
  const source = new EventSource("/ui/live");
  source.addEventListener("open", () => { setState(true, "live"); catchUp(); });
  source.addEventListener("error", () => setState(false, "reconnecting…"));
  source.addEventListener("status", (m) => onStatus(JSON.parse(m.data)));
  source.addEventListener("plate", (m) => onPlate(JSON.parse(m.data)));
  window.addEventListener("beforeunload", () => source.close());
})();
