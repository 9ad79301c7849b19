// Nodes page (hub): the live stream's status.nodes redraws the node cards once a second.
"use strict";

(function nodes() {
  const root = document.getElementById("nodes");
  if (!root) return;
  const stateEl = document.getElementById("live-state");
  const count = document.getElementById("node-count");
  const none = document.getElementById("no-nodes");

  function ago(s) {  // the same words as stream/console/nodes.py ago()
    if (s === null || s === undefined) return "never";
    s = Math.floor(s);
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.floor(s / 60)} min ago`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
    return `${Math.floor(s / 86400)} d ago`;
  }
  const dash = (v) => (v === null || v === undefined ? "–" : String(v));
  const pill = (state) => el("span", {class: "pill pill-" + state}, state);

  function lastSeen(n) {
    if (!n.last_seen) return [el("span", {class: "muted"}, "never")];
    const t = el("time", {datetime: n.last_seen}, n.last_seen.replace("T", " ").slice(0, 19));
    t.title = localTime(n.last_seen);
    return [el("span", {class: "ago"}, ago(n.last_seen_s)), " ",
            el("span", {class: "muted"}, "· ", t, " UTC")];
  }

  function card(n) {
    const state = n.online ? "online" : "offline";
    const badge = pill(state);
    badge.dataset.field = "state";
    const head = el("div", {class: "node-head"}, el("h2", {}, n.node_id), badge,
      el("a", {class: "small", href: "/ui/events?node=" + encodeURIComponent(n.node_id)}, "events"));
    const kv = el("dl", {class: "kv"},
      el("dt", {}, "Last seen"), el("dd", {"data-field": "last_seen"}, ...lastSeen(n)),
      el("dt", {}, "Version"), el("dd", {"data-field": "version"}, dash(n.version)),
      el("dt", {}, "Outputs pending"), el("dd", {"data-field": "outputs_pending"}, dash(n.outputs_pending)),
      el("dt", {}, "Engine"), el("dd", {"data-field": "engine"}, dash((n.engine || {}).backend)));
    const article = el("article", {class: `card node ${state}`, "data-node": n.node_id}, head, kv);
    const cams = Object.entries(n.cameras || {}).sort(([a], [b]) => a.localeCompare(b));
    if (!cams.length) {
      article.append(el("p", {class: "muted small"}, "No cameras reported."));
      return article;
    }
    const body = el("tbody");
    for (const [name, c] of cams) {
      const st = el("td", {}, pill(c.state || "unknown"));
      if (c.last_error) st.append(" ", el("span", {class: "error-text"}, c.last_error));
      body.append(el("tr", {"data-camera": name}, el("td", {}, name), st, el("td", {}, dash(c.fps)),
        el("td", {}, dash(c.frames_analysed)), el("td", {}, dash(c.frames_dropped)),
        el("td", {}, dash(c.events))));
    }
    const head2 = el("tr", {}, ...["Camera", "State", "fps", "Analysed", "Dropped", "Events"]
      .map((h) => el("th", {}, h)));
    const table = el("table", {class: "node-cameras"}, el("thead", {}, head2), body);
    if (!n.online) table.title = "as the node last reported";
    article.append(table);
    return article;
  }

  function onStatus(status) {
    const list = status.nodes;
    if (!Array.isArray(list)) return;
    root.replaceChildren(...list.map(card));
    const online = list.filter((n) => n.online).length;
    if (count) count.textContent = `${online} of ${list.length} online`;
    if (none) none.hidden = list.length > 0;
  }

  const source = new EventSource("/ui/live");
  source.addEventListener("open", () => {
    stateEl.textContent = "live"; stateEl.classList.add("on");
  });
  source.addEventListener("error", () => {
    stateEl.textContent = "reconnecting…"; stateEl.classList.remove("on");
  });
  source.addEventListener("status", (m) => onStatus(JSON.parse(m.data)));
  window.addEventListener("beforeunload", () => source.close());
})();
