// zapvisor dashboard: an overview of the fleet (sessions by status and by tenant, breakers), the live
// supervision tree (big subtrees collapsed, children paged, a filter by path/state/breaker), the cluster's
// nodes, sessions with their QR / pairing codes, lifecycle events (filtered by kind and path), and
// restart / reset-breaker buttons. Plain JS, no build step.
// The admin token comes from the URL fragment (#token=...) or the form, and stays in sessionStorage.
// Live: the page joins the websocket's `supervision` room and redraws on every lifecycle event;
// a one-second poll of the REST snapshots is the floor (session statuses, and when the socket is down).
"use strict";

const REFRESH_MS = 1000;  // one snapshot per second: live enough for humans, cheap for the daemon
const RECONNECT_MS = 2000;  // a dropped websocket is reopened after this pause
const EVENTS_FETCHED = 500;  // the feed filters the daemon's last 500 events (it keeps 1,000): a session's story fits
const EVENTS_SHOWN = 100;  // matching events drawn at most, newest first
const COLLAPSE_OVER = 25;  // a subtree with more children starts collapsed (click ▸ to open it)
const CHILD_PAGE = 50;  // children drawn per page of an open subtree
const FLAT_PAGE = 100;  // matching actors drawn per page when the tree is filtered
const FILTER_PAGES = "\u0000filter";  // the pager key of the filtered list (no actor path looks like it)
const CARDS_SHOWN = 24;  // session cards drawn at most: a small fleet all, a big one what needs a human
const TENANTS_SHOWN = 50;  // rows of the by-tenant table (the biggest tenants first)
const METRICS_EVERY_MS = 5000;  // /metrics counts the stored messages: a sample every 5 s, not every second
const HISTORY_S = 3600;  // the charts show the last hour, kept in this page's memory
const CHARTED = {  // what the charts draw: a rate per second (or per minute) of a counter, or a gauge
  received: { name: "zapvisor_messages_received_total", rate: 1, label: "inbound msg/s" },
  sent: { name: "zapvisor_messages_sent_total", rate: 1, label: "outbound msg/s" },
  restarts: { name: "zapvisor_actor_restarts_total", rate: 60, label: "restarts/min" },
  clients: { name: "zapvisor_websocket_clients", rate: 0, label: "websocket clients" },
};
const GOOD_ENOUGH = new Set(["qr", "pairing", "connecting", "starting", "queued"]);  // on their way, not broken

const params = new URLSearchParams(location.hash.slice(1));
if (params.get("token")) sessionStorage.setItem("zapvisor-token", params.get("token"));
let token = sessionStorage.getItem("zapvisor-token") || "";
const shownQr = new Map();  // session id -> the QR payload currently drawn (redraw only on change)
const toggled = new Map();  // actor path -> expanded or not, where the user chose
const pages = new Map();  // actor path (or FILTER_PAGES) -> page of children shown
let lastTree = null;
let lastEvents = [];  // the last fetched events, oldest first: the filter redraws from them at once
const metricHistory = [];  // {t, received, sent, restarts, clients}, oldest first, the last HISTORY_S

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  token = document.getElementById("token").value.trim();
  sessionStorage.setItem("zapvisor-token", token);
  if (socket) socket.close(); else openLive();
  refresh();
});

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Authorization": "Bearer " + token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(response.status + " " + message);
  }
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "onclick") node.addEventListener("click", value);
    else if (value !== null && value !== undefined) node.setAttribute(key, value);  // null: no attribute
  }
  for (const child of children) node.append(child);
  return node;
}

function formatUptime(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return seconds.toFixed(0) + " s";
  if (seconds < 3600) return (seconds / 60).toFixed(0) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

async function control(path, action) {
  const url = action === "reset-breaker" ? "/supervision/breaker/reset" : "/supervision/actor/" + action;
  try {
    await api("POST", url, { path });
  } catch (error) {
    alert(action + " " + path + ": " + error.message);
  }
  refresh();
}

// -- the tree: subtrees with many children start collapsed, children come in pages, a filter
// turns it into a flat, paged list of the matching actors.

function isExpanded(node) {
  if (toggled.has(node.path)) return toggled.get(node.path);
  return node.children.length <= COLLAPSE_OVER;
}

function toggle(path, open) {
  toggled.set(path, open);
  if (lastTree) renderTree(lastTree);
}

function turnPage(path, page) {
  pages.set(path, page);
  if (lastTree) renderTree(lastTree);
}

function actorRow(node, depth, flat) {  // flat: a row of the filtered list (no toggle, no summary)
  const buttons = el("td");
  if (node.path !== "/") {
    buttons.append(el("button", { "data-action": "restart", "data-path": node.path,
                                  onclick: () => control(node.path, "restart") }, "restart"));
  }
  if (node.breaker && node.breaker !== "closed") {
    buttons.append(el("button", { "data-action": "reset-breaker", "data-path": node.path,
                                  onclick: () => control(node.path, "reset-breaker") }, "reset breaker"));
  }
  const name = el("td", { style: "padding-left:" + (depth + 0.5) + "em" });
  if (!flat && node.children.length) {
    const open = isExpanded(node);
    name.append(el("button", { class: "toggle", "data-toggle": node.path, "aria-expanded": String(open),
                               onclick: () => toggle(node.path, !open) }, open ? "▾" : "▸"), " ");
  }
  name.append(node.id === "" ? "/" : node.path);
  if (!flat && node.children.length) name.append(" ", el("span", { class: "muted" }, childSummary(node)));
  return el("tr", { "data-path": node.path },
    name,
    el("td", {}, el("span", { class: "state state-" + node.state, "data-state": node.state }, node.state)),
    el("td", {}, String(node.restarts)),
    el("td", { class: "breaker-" + (node.breaker || "none") }, node.breaker || ""),
    el("td", {}, node.mailbox_capacity === null ? String(node.mailbox_depth)
                                                : node.mailbox_depth + "/" + node.mailbox_capacity),
    el("td", {}, formatUptime(node.uptime)),
    buttons);
}

function childSummary(node) {
  const states = {};
  for (const child of node.children) states[child.state] = (states[child.state] || 0) + 1;
  return "(" + node.children.length + ": " +
    Object.entries(states).map(([state, n]) => n + " " + state).join(", ") + ")";
}

function pager(path, page, total, size, depth) {
  const pagesTotal = Math.ceil(total / size);
  const first = page * size + 1, last = Math.min(total, (page + 1) * size);
  return el("tr", { class: "pager", "data-pager": path },
    el("td", { colspan: "7", style: "padding-left:" + (depth + 0.5) + "em" },
      el("button", { "data-page": "prev", disabled: page === 0 ? "" : null,
                     onclick: () => turnPage(path, Math.max(0, page - 1)) }, "‹ prev"), " ",
      el("span", { class: "muted" }, first + "–" + last + " of " + total), " ",
      el("button", { "data-page": "next", disabled: page >= pagesTotal - 1 ? "" : null,
                     onclick: () => turnPage(path, Math.min(pagesTotal - 1, page + 1)) }, "next ›")));
}

function matches(node, filter) {
  if (filter.state && node.state !== filter.state) return false;
  if (filter.breaker && (node.breaker || "") !== filter.breaker &&
      !(filter.breaker === "open" && node.breaker === "forced_open")) return false;
  return !filter.text || node.path.toLowerCase().includes(filter.text);
}

function currentFilter() {
  return { text: document.getElementById("filter-text").value.trim().toLowerCase(),
           state: document.getElementById("filter-state").value,
           breaker: document.getElementById("filter-breaker").value };
}

function renderTree(root) {
  lastTree = root;
  const body = document.querySelector("#tree tbody");
  const rows = [];
  const filter = currentFilter();
  let total = 0;
  if (filter.text || filter.state || filter.breaker) {
    const found = [];
    (function walk(node) {
      total += 1;
      if (matches(node, filter)) found.push(node);
      for (const child of node.children) walk(child);
    })(root);
    const page = Math.min(pages.get(FILTER_PAGES) || 0, Math.max(0, Math.ceil(found.length / FLAT_PAGE) - 1));
    for (const node of found.slice(page * FLAT_PAGE, (page + 1) * FLAT_PAGE)) rows.push(actorRow(node, 0, true));
    if (found.length > FLAT_PAGE) rows.push(pager(FILTER_PAGES, page, found.length, FLAT_PAGE, 0));
    document.getElementById("tree-count").textContent = found.length + " of " + total + " actors match";
  } else {
    (function walk(node, depth) {
      rows.push(actorRow(node, depth, false));
      if (!node.children.length || !isExpanded(node)) return;
      const count = node.children.length;
      const page = Math.min(pages.get(node.path) || 0, Math.ceil(count / CHILD_PAGE) - 1);
      // A big (dynamic) subtree pages in id order, so a page holds the same actors from one second to
      // the next; a small one keeps its start order (the order the supervisor starts and stops them).
      const children = count > COLLAPSE_OVER ? [...node.children].sort((a, b) => a.id.localeCompare(b.id))
                                             : node.children;
      for (const child of children.slice(page * CHILD_PAGE, (page + 1) * CHILD_PAGE)) walk(child, depth + 1);
      if (count > CHILD_PAGE) rows.push(pager(node.path, page, count, CHILD_PAGE, depth + 1));
    })(root, 0);
    (function count(node) { total += 1; node.children.forEach(count); })(root);
    document.getElementById("tree-count").textContent = total + " actors";
  }
  body.replaceChildren(...rows);
  renderSupervision(root);
}

function renderSupervision(root) {
  const breakers = {}, states = {};
  let restarts = 0;
  (function walk(node) {
    if (node.breaker) breakers[node.breaker] = (breakers[node.breaker] || 0) + 1;
    states[node.state] = (states[node.state] || 0) + 1;
    restarts += node.restarts;
    node.children.forEach(walk);
  })(root);
  const open = (breakers.open || 0) + (breakers.forced_open || 0);
  document.getElementById("breakers").replaceChildren(
    chip("breakers open", open, open ? "bad" : "good", "breakers-open"),
    chip("half open", breakers.half_open || 0, breakers.half_open ? "warn" : "good", "breakers-half-open"),
    chip("suspended", states.suspended || 0, states.suspended ? "bad" : "good", "suspended"),
    chip("in backoff", states.backoff || 0, states.backoff ? "warn" : "good", "backoff"),
    chip("restarts", restarts, "plain", "restarts"));
}

function chip(label, value, tone, key) {
  return el("span", { class: "chip chip-" + tone, "data-count": key, "data-value": String(value) },
            el("b", {}, String(value)), " " + label);
}

// -- the sessions: counted for the overview; cards only for what needs a human (or all of a small fleet).

async function renderSessions() {
  const all = [];
  for (const tenant of await api("GET", "/tenants")) {
    for (const session of await api("GET", "/tenants/" + tenant.id + "/sessions")) all.push([tenant.id, session]);
  }
  renderOverview(all);
  const attention = all.filter(([, s]) => s.status !== "connected");
  const shown = (all.length <= CARDS_SHOWN ? all : attention).slice(0, CARDS_SHOWN);
  const hidden = all.length - shown.length;
  document.getElementById("sessions-note").textContent = hidden ?
    hidden + " more not shown (" + (all.length - attention.length) + " connected); filter the tree to find one" : "";
  const cards = [];
  for (const [tenantId, session] of shown) {
    const card = el("div", { class: "session", "data-session": session.id },
      el("b", {}, tenantId + " / " + session.id), " ",
      el("span", { class: "status status-" + session.status, "data-status": session.status }, session.status),
      " ", el("span", { class: "muted" }, session.reason || ""));
    if (session.pairing_code) card.append(el("div", { class: "pairing-code" }, session.pairing_code));
    const qr = el("div", { class: "qr" });
    card.append(qr);
    if (session.qr) {
      const key = tenantId + "/" + session.id;
      if (shownQr.get(key)?.code !== session.qr) {
        const svg = await api("GET", "/tenants/" + tenantId + "/sessions/" + session.id + "/qr?format=svg");
        shownQr.set(key, { code: session.qr, svg });
      }
      qr.innerHTML = shownQr.get(key).svg;
    }
    cards.push(card);
  }
  document.getElementById("sessions").replaceChildren(...cards);
}

// -- campaigns: one row each with a progress bar (sent, failed and skipped of the total) and
// pause/resume buttons.

async function campaignAction(campaign, action) {
  try {
    await api("POST", "/tenants/" + campaign.tenant_id + "/campaigns/" + campaign.id + "/" + action);
  } catch (error) {
    alert(action + " campaign " + campaign.id + ": " + error.message);
  }
  refresh();
}

function campaignRow(campaign) {
  const counts = campaign.counts;
  const done = counts.sent + counts.failed + counts.skipped;
  const action = campaign.status === "running" ? "pause" : campaign.status === "paused" ? "resume" : null;
  const button = action ? el("button", { onclick: () => campaignAction(campaign, action) }, action) : "";
  return el("tr", { "data-campaign": String(campaign.id) },
    el("td", {}, campaign.tenant_id + " / " + campaign.name + " #" + campaign.id),
    el("td", {}, el("span", { class: "status status-" + campaign.status, title: campaign.reason || "" },
      campaign.status)),
    el("td", {}, el("progress", { value: String(done), max: String(Math.max(campaign.total, 1)) }),
      " " + done + "/" + campaign.total),
    ...[counts.sent, counts.skipped, counts.failed, counts.delivered, counts.read, counts.replied]
      .map((n) => el("td", {}, String(n))),
    el("td", {}, button));
}

async function renderCampaigns() {
  const campaigns = await api("GET", "/campaigns?limit=50");
  document.querySelector("#campaigns tbody").replaceChildren(...campaigns.map(campaignRow));
}

function renderOverview(all) {
  const byStatus = {}, byTenant = {};
  for (const [tenantId, session] of all) {
    byStatus[session.status] = (byStatus[session.status] || 0) + 1;
    const row = byTenant[tenantId] || (byTenant[tenantId] = { total: 0, connected: 0 });
    row.total += 1;
    if (session.status === "connected") row.connected += 1;
  }
  const tone = (status) => status === "connected" ? "good" : GOOD_ENOUGH.has(status) ? "warn" : "bad";
  document.getElementById("by-status").replaceChildren(
    chip("sessions", all.length, "plain", "sessions"),
    ...Object.entries(byStatus).sort((a, b) => b[1] - a[1]).map(([status, n]) => chip(status, n, tone(status), status)));
  const tenants = Object.entries(byTenant).sort((a, b) => b[1].total - a[1].total);
  document.querySelector("#by-tenant tbody").replaceChildren(...tenants.slice(0, TENANTS_SHOWN).map(([id, row]) =>
    el("tr", { "data-tenant": id }, el("td", {}, id), el("td", {}, String(row.total)),
       el("td", {}, String(row.connected)),
       el("td", { class: row.total - row.connected ? "breaker-open" : "" }, String(row.total - row.connected)))));
}

// -- traffic: /metrics sampled every few seconds, kept in this page's memory for an hour, drawn as
// sparklines (rates from the exact counters; a counter that went down, a restarted daemon, counts 0).

async function sampleMetrics() {
  try {
    const text = await (await fetch("/metrics")).text();
    const sums = {};
    for (const line of text.split("\n")) {
      if (!line || line.startsWith("#")) continue;
      const name = line.split(/[{ ]/, 1)[0];
      sums[name] = (sums[name] || 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
    }
    const now = Date.now() / 1000;
    const sample = { t: now };
    for (const [key, metric] of Object.entries(CHARTED)) sample[key] = sums[metric.name] || 0;
    metricHistory.push(sample);
    while (metricHistory.length && metricHistory[0].t < now - HISTORY_S) metricHistory.shift();
    renderCharts();
  } catch (_) { /* the daemon is away: the status line says so */ }
}

function series(key) {
  const metric = CHARTED[key], points = [];
  for (let i = 1; i < metricHistory.length; i++) {
    const before = metricHistory[i - 1], after = metricHistory[i];
    const value = metric.rate ? Math.max(0, after[key] - before[key]) / (after.t - before.t) * metric.rate
                              : after[key];
    points.push([after.t, value]);
  }
  return points;
}

function sparkline(points) {
  const width = 160, height = 32;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "spark");
  if (points.length > 1) {
    const t0 = points[0][0], span = Math.max(1, points[points.length - 1][0] - t0);
    const top = Math.max(1e-9, ...points.map((p) => p[1]));
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.map(([t, v]) =>
      ((t - t0) / span * width).toFixed(1) + "," + (height - 1 - v / top * (height - 2)).toFixed(1)).join(" "));
    svg.append(line);
  }
  return svg;
}

function renderCharts() {
  document.getElementById("charts").replaceChildren(...Object.entries(CHARTED).map(([key, metric]) => {
    const points = series(key);
    const current = points.length ? points[points.length - 1][1] : null;
    return el("div", { class: "chart", "data-chart": key, "data-points": String(points.length) },
      el("span", {}, metric.label + ": "),
      el("b", { "data-value": current === null ? "" : String(current) },
         current === null ? "…" : (metric.rate ? current.toFixed(1) : String(current))),
      sparkline(points));
  }));
}

// -- the event feed: the daemon's recent events, filtered here by kind and by path text. The filter
// lives in its inputs, so every redraw (a new event, the poll) applies it again.

function eventFilter() {
  return { kind: document.getElementById("events-kind").value,
           text: document.getElementById("events-text").value.trim().toLowerCase() };
}

function eventMatches(event, filter) {
  if (filter.kind && event.kind !== filter.kind) return false;
  return !filter.text || event.path.toLowerCase().includes(filter.text);
}

function eventRow(e) {
  return el("li", { "data-kind": e.kind, "data-path": e.path },
    new Date(e.at * 1000).toLocaleTimeString() + " " + e.kind + " " + e.path + (e.reason ? " — " + e.reason : ""));
}

function renderEvents(events) {
  lastEvents = events;
  const filter = eventFilter();
  const found = events.filter((e) => eventMatches(e, filter));
  const shown = found.slice(-EVENTS_SHOWN).reverse();
  document.getElementById("events").replaceChildren(...shown.map(eventRow));
  const count = document.getElementById("events-count");
  count.dataset.matched = String(found.length);
  count.dataset.total = String(events.length);
  count.textContent = (filter.kind || filter.text ? found.length + " of " + events.length + " events match"
                                                  : events.length + " events") +
    (found.length > shown.length ? " (newest " + shown.length + " shown)" : "");
}

// -- the nodes: every live member of the cluster (a memory-bus node is a cluster of one), this one marked.

function renderNodes(cluster) {
  document.getElementById("nodes-total").replaceChildren(
    chip(cluster.members.length === 1 ? "node" : "nodes", cluster.members.length, "plain", "nodes"),
    chip("sessions / capacity", cluster.sessions + "/" + cluster.capacity, "plain", "cluster-load"));
  document.querySelector("#nodes tbody").replaceChildren(...cluster.members.map(nodeRow));
}

function nodeRow(member) {
  const load = member.load + "/" + member.capacity;
  return el("tr", { "data-node": member.node_id, "data-self": String(member.self) },
    el("td", {}, member.node_id, member.self ? el("span", { class: "muted" }, " (this node)") : ""),
    el("td", {}, member.url || ""),
    el("td", { "data-load": load, class: member.load >= member.capacity ? "breaker-half_open" : "" }, load),
    el("td", { "data-draining": String(member.draining), class: member.draining ? "breaker-half_open" : "" },
       member.draining ? "draining" : ""));
}

let busy = false;
async function refresh() {
  if (busy || !token) return;
  busy = true;
  const status = document.getElementById("connection");
  try {
    const [tree, events, cluster] = await Promise.all([
      api("GET", "/supervision/tree"), api("GET", "/supervision/events?limit=" + EVENTS_FETCHED),
      api("GET", "/cluster")]);
    renderTree(tree);
    renderEvents(events);
    renderNodes(cluster);
    await renderSessions();
    await renderCampaigns();
    status.textContent = "live (" + status.dataset.live + ") · " + new Date().toLocaleTimeString();
  } catch (error) {
    status.textContent = "error: " + error.message;
  } finally {
    busy = false;
  }
}

let socket = null;
function openLive() {
  if (!token || socket) return;
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  socket = new WebSocket(scheme + location.host + "/ws?token=" + encodeURIComponent(token));
  const status = document.getElementById("connection");
  socket.onopen = () => socket.send(JSON.stringify({ op: "join", room: "supervision" }));
  socket.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "joined") status.dataset.live = "websocket";
    if (typeof frame.type === "string" && frame.type.startsWith("supervision.")) refresh();
  };
  socket.onclose = () => {
    socket = null;
    status.dataset.live = "polling";
    setTimeout(openLive, RECONNECT_MS);
  };
}

document.getElementById("tree-filter").addEventListener("input", () => {
  pages.delete(FILTER_PAGES);
  if (lastTree) renderTree(lastTree);
});
document.getElementById("tree-filter").addEventListener("submit", (event) => event.preventDefault());
document.getElementById("events-filter").addEventListener("input", () => renderEvents(lastEvents));
document.getElementById("events-filter").addEventListener("submit", (event) => event.preventDefault());
document.getElementById("connection").dataset.live = "polling";
refresh();
openLive();
setInterval(refresh, REFRESH_MS);
sampleMetrics();
setInterval(sampleMetrics, METRICS_EVERY_MS);
