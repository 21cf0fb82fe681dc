// zapvisor dashboard: the live supervision tree, sessions with their QR / pairing codes, breakers,
// lifecycle events, and restart / reset-breaker buttons. Plain JS, no build step.
// The admin token comes from the URL fragment (#token=...) or the form, and stays in sessionStorage.
// Live: the page joins the websocket's `supervision` room and redraws on every lifecycle event;
// a one-second poll of the REST snapshots is the floor (session statuses, and when the socket is down).
"use strict";

const REFRESH_MS = 1000;  // one snapshot per second: live enough for humans, cheap for the daemon
const RECONNECT_MS = 2000;  // a dropped websocket is reopened after this pause
const EVENTS_SHOWN = 100;

const params = new URLSearchParams(location.hash.slice(1));
if (params.get("token")) sessionStorage.setItem("zapvisor-token", params.get("token"));
let token = sessionStorage.getItem("zapvisor-token") || "";
const shownQr = new Map();  // session id -> the QR payload currently drawn (redraw only on change)

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
    if (key === "onclick") node.addEventListener("click", value); else node.setAttribute(key, value);
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

function renderTree(root) {
  const body = document.querySelector("#tree tbody");
  const rows = [];
  const breakers = {};
  (function walk(node, depth) {
    const buttons = el("td");
    if (node.path !== "/") {
      buttons.append(el("button", { "data-action": "restart", "data-path": node.path,
                                    onclick: () => control(node.path, "restart") }, "restart"));
    }
    if (node.breaker) {
      breakers[node.breaker] = (breakers[node.breaker] || 0) + 1;
      if (node.breaker !== "closed") {
        buttons.append(el("button", { "data-action": "reset-breaker", "data-path": node.path,
                                      onclick: () => control(node.path, "reset-breaker") }, "reset breaker"));
      }
    }
    rows.push(el("tr", { "data-path": node.path },
      el("td", { style: "padding-left:" + (depth + 0.5) + "em" }, node.id === "" ? "/" : node.path),
      el("td", {}, el("span", { class: "state state-" + node.state, "data-state": node.state }, node.state)),
      el("td", {}, String(node.restarts)),
      el("td", { class: "breaker-" + (node.breaker || "none") }, node.breaker || ""),
      el("td", {}, node.mailbox_capacity === null ? String(node.mailbox_depth)
                                                  : node.mailbox_depth + "/" + node.mailbox_capacity),
      el("td", {}, formatUptime(node.uptime)),
      buttons));
    for (const child of node.children) walk(child, depth + 1);
  })(root, 0);
  body.replaceChildren(...rows);
  document.getElementById("breakers").textContent = "breakers: " +
    Object.entries(breakers).map(([mode, n]) => mode + " " + n).join(", ");
}

async function renderSessions() {
  const container = document.getElementById("sessions");
  const cards = [];
  for (const tenant of await api("GET", "/tenants")) {
    for (const session of await api("GET", "/tenants/" + tenant.id + "/sessions")) {
      const card = el("div", { class: "session", "data-session": session.id },
        el("b", {}, tenant.id + " / " + session.id), " ",
        el("span", { class: "status status-" + session.status, "data-status": session.status }, session.status),
        " ", el("span", { class: "muted" }, session.reason || ""));
      if (session.pairing_code) card.append(el("div", { class: "pairing-code" }, session.pairing_code));
      const qr = el("div", { class: "qr" });
      card.append(qr);
      if (session.qr) {
        const key = tenant.id + "/" + session.id;
        if (shownQr.get(key)?.code !== session.qr) {
          const svg = await api("GET", "/tenants/" + tenant.id + "/sessions/" + session.id + "/qr?format=svg");
          shownQr.set(key, { code: session.qr, svg });
        }
        qr.innerHTML = shownQr.get(key).svg;
      }
      cards.push(card);
    }
  }
  container.replaceChildren(...cards);
}

function renderEvents(events) {
  const list = document.getElementById("events");
  list.replaceChildren(...events.slice(-EVENTS_SHOWN).reverse().map((e) =>
    el("li", { "data-kind": e.kind },
       new Date(e.at * 1000).toLocaleTimeString() + " " + e.kind + " " + e.path + (e.reason ? " — " + e.reason : ""))));
}

let busy = false;
async function refresh() {
  if (busy || !token) return;
  busy = true;
  const status = document.getElementById("connection");
  try {
    const [tree, events] = await Promise.all([
      api("GET", "/supervision/tree"), api("GET", "/supervision/events?limit=" + EVENTS_SHOWN)]);
    renderTree(tree);
    renderEvents(events);
    await renderSessions();
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

document.getElementById("connection").dataset.live = "polling";
refresh();
openLive();
setInterval(refresh, REFRESH_MS);
