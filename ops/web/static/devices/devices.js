// The technician page: every device's state, the open alarms, one device's figures, charts,
// alarms, events and commands; kept current over the live socket (device.health, device.alarm).

import { api } from "../js/api.js";
import { LiveFeed } from "../js/live.js";
import { lineChart } from "./chart.js";
import { dt, onLangChange, setLang, translatePage } from "./i18n.js";

const $ = (selector) => document.querySelector(selector);
const KEEPERS = new Set(["technician", "supervisor"]);
const TOPICS = ["device.health", "device.alarm"];

const state = {
  user: null,
  devices: new Map(),
  alarms: new Map(),
  selected: null,
  detail: null,
  history: null,
  live: "closed",
};

const feed = new LiveFeed({
  onState: (live) => {
    state.live = live;
    showLive();
  },
  onMessage: (message) => {
    if (message.type === "hello") {
      feed.send({ type: "subscribe", topics: TOPICS });
      refresh();
    } else if (message.type === "event") {
      applyEvent(message);
    }
  },
  onEnded: () => start(),
});

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function when(iso) {
  if (!iso) return dt("never");
  return new Date(iso).toLocaleString(document.documentElement.lang === "en" ? "en-GB" : "id-ID");
}

function stateBadge(value) {
  return el("span", { class: "state", "data-state": value, text: dt(`state.${value}`) });
}

function showLive() {
  $("#live").dataset.state = state.live;
  $("#live-text").textContent = dt(`live.${state.live}`);
}

// -- data -----------------------------------------------------------------------------------

// One refresh at a time: another asked for meanwhile (a device not listed yet, a reconnect) runs
// once after it. Events heard while a list is on its way are folded in again on top of it, so a
// list taken before an event cannot undo it.
let refreshing = false;
let again = false;
let heard = [];

async function refresh() {
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    do {
      again = false;
      heard = [];
      const [list, alarms] = await Promise.all([
        api("GET", "/api/v1/devices"),
        api("GET", "/api/v1/alarms?status=active&limit=500"),
      ]);
      state.devices = new Map(list.devices.map((device) => [device.id, device]));
      state.alarms = new Map(alarms.alarms.map((alarm) => [alarm.id, alarm]));
      for (const message of heard) merge(message);
    } while (again);
  } finally {
    refreshing = false;
    heard = [];
  }
  fillFilters();
  renderList();
  renderAlarms();
  // How many lists the page has drawn: whoever waits on one (a test) can tell it is in.
  document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes ?? 0) + 1);
  if (state.selected) await openDetail(state.selected);
}

/** Fold one event into the state; false for a device the list does not hold yet. */
function merge(message) {
  const payload = message.payload;
  if (message.topic === "device.health") {
    const known = state.devices.get(payload.device_id);
    if (!known) return false;
    Object.assign(known, { state: payload.state, reason: payload.reason, figures: payload.figures });
  } else if (message.topic === "device.alarm") {
    if (payload.status === "cleared") state.alarms.delete(payload.id);
    else state.alarms.set(payload.id, { ...state.alarms.get(payload.id), ...payload });
  }
  return true;
}

function applyEvent(message) {
  const payload = message.payload;
  if (refreshing) heard.push(message);
  if (!merge(message)) {
    refresh();
    return;
  }
  if (message.topic === "device.health") renderList();
  else if (message.topic === "device.alarm") renderAlarms();
  if (state.selected === payload.device_id) openDetail(payload.device_id);
}

// -- list -----------------------------------------------------------------------------------

function fillFilters() {
  for (const [id, field] of [["#filter-kind", "kind"], ["#filter-site", "site"]]) {
    const select = $(id);
    const chosen = select.value;
    const values = [...new Set([...state.devices.values()].map((d) => d[field]).filter(Boolean))].sort();
    select.replaceChildren(select.options[0], ...values.map((v) => el("option", { value: v, text: v })));
    select.value = values.includes(chosen) ? chosen : "";
  }
}

function filtered() {
  const kind = $("#filter-kind").value;
  const site = $("#filter-site").value;
  const wanted = $("#filter-state").value;
  return [...state.devices.values()].filter(
    (d) => (!kind || d.kind === kind) && (!site || d.site === site) && (!wanted || d.state === wanted),
  );
}

function renderList() {
  const rows = filtered().map((device) => {
    const row = el(
      "tr",
      { tabindex: "0", "data-id": device.id, "aria-selected": String(device.id === state.selected) },
      el("td", { text: device.name ? `${device.name} (${device.id})` : device.id }),
      el("td", { text: device.kind }),
      el("td", { text: device.site ?? "" }),
      el("td", {}, stateBadge(device.state)),
      el("td", { text: device.reason ?? "" }),
      el("td", { text: when(device.last_seen) }),
    );
    row.addEventListener("click", () => openDetail(device.id));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter") openDetail(device.id);
    });
    return row;
  });
  $("#device-rows").replaceChildren(...rows);
  $("#counts").textContent = dt("counts", { shown: rows.length, total: state.devices.size });
}

// -- alarms ---------------------------------------------------------------------------------

function alarmItem(alarm) {
  const item = el(
    "li",
    { "data-severity": alarm.severity, "data-alarm": String(alarm.id) },
    el("strong", { text: `${alarm.device_id} · ${alarm.code}` }),
    " ",
    el("span", { text: alarm.message }),
    el("div", { class: "meta", text: `${when(alarm.raised_at)} · ${dt("alarm.times", { n: alarm.times })}` }),
  );
  if (alarm.escalated_at && !alarm.acknowledged_by) {
    item.append(el("div", { class: "escalated", text: dt("alarm.escalated") }));
  }
  if (alarm.acknowledged_by) {
    item.append(el("div", { class: "meta", text: dt("alarm.acked", { who: alarm.acknowledged_by }) }));
  } else if (KEEPERS.has(state.user?.role)) {
    const button = el("button", { type: "button", class: "ack", text: dt("alarm.ack") });
    button.addEventListener("click", () => acknowledge(alarm.id, button));
    item.append(button);
  }
  return item;
}

function renderAlarms() {
  const alarms = [...state.alarms.values()].sort((a, b) => b.id - a.id);
  $("#alarms").replaceChildren(...alarms.map(alarmItem));
  $("#alarms-empty").hidden = alarms.length > 0;
}

async function acknowledge(alarmId, button) {
  button.disabled = true;
  try {
    const alarm = await api("POST", `/api/v1/alarms/${alarmId}/ack`);
    state.alarms.set(alarm.id, alarm);
    renderAlarms();
    if (state.selected === alarm.device_id) openDetail(alarm.device_id);
  } catch (error) {
    button.disabled = false;
    button.title = error.message;
  }
}

// -- detail ---------------------------------------------------------------------------------

async function openDetail(deviceId) {
  state.selected = deviceId;
  const since = new Date(Date.now() - 3600 * 1000).toISOString();
  const [detail, history] = await Promise.all([
    api("GET", `/api/v1/devices/${encodeURIComponent(deviceId)}`),
    api("GET", `/api/v1/devices/${encodeURIComponent(deviceId)}/health?from=${encodeURIComponent(since)}`),
  ]);
  if (state.selected !== deviceId) return;
  state.detail = detail;
  state.history = history;
  renderDetail();
  renderList();
}

function renderDetail() {
  const d = state.detail;
  if (!d) return;
  $("#detail").hidden = false;
  $("#detail-title").textContent = d.name ? `${d.name} (${d.id})` : d.id;
  const line = [stateBadge(d.state), " ", d.reason ?? ""];
  if (d.pending) line.push(` · ${dt("detail.pending", { state: dt(`state.${d.pending}`) })}`);
  $("#detail-state").replaceChildren(...line);
  const rejected = Object.entries(d.rejected_input).map(([r, n]) => `${r}: ${n}`).join(", ");
  const facts = [
    ["fact.kind", d.kind],
    ["fact.site", d.site ?? "—"],
    ["fact.adapter", d.adapter ?? "—"],
    ["fact.seen", when(d.last_seen)],
    ["fact.tags", d.tags.join(", ") || "—"],
    ["fact.rejected", rejected || "0"],
  ];
  $("#detail-facts").replaceChildren(
    ...facts.map(([key, value]) => el("div", {}, el("dt", { text: dt(key) }), el("dd", { text: value }))),
  );
  renderCharts(d, state.history);
  renderCommands(d);
  $("#detail-alarms").replaceChildren(
    ...(d.alarms.length ? d.alarms.map(alarmItem) : [el("li", { text: dt("detail.no_alarms") })]),
  );
  $("#detail-events").replaceChildren(
    ...d.events.map((e) => el("li", { text: `${when(e.at)} · ${e.kind} · ${JSON.stringify(e.detail)}` })),
  );
}

function renderCharts(d, history) {
  const names = new Set(d.figure_specs.map((f) => f.name));
  for (const [name, value] of Object.entries(d.figures)) if (typeof value === "number") names.add(name);
  const units = new Map(d.figure_specs.map((f) => [f.name, f.unit]));
  const limits = new Map(d.thresholds.map((t) => [t.figure, t]));
  const charts = [...names].map((name) => {
    const points = historyPoints(history, name);
    const limit = limits.get(name) ?? {};
    const current = d.figures[name];
    const unit = units.get(name) ?? "";
    const notes = [];
    if (limit.above != null) notes.push(dt("limit.above", { v: limit.above }));
    if (limit.below != null) notes.push(dt("limit.below", { v: limit.below }));
    if (history.resolution !== "raw") notes.push(dt("chart.downsampled", { width: history.resolution }));
    return el(
      "figure",
      { class: "chart", "data-figure": name },
      el("h4", { text: name }),
      el("div", { class: "value", text: current === undefined ? "—" : `${current} ${unit}`.trim() }),
      lineChart(points, { above: limit.above ?? null, below: limit.below ?? null, label: name }),
      el("figcaption", { class: "muted", text: notes.join(" · ") }),
    );
  });
  $("#charts").replaceChildren(...(charts.length ? charts : [el("p", { class: "muted", text: dt("detail.no_figures") })]));
}

// One figure's points: each raw sample, or each bucket's average (at its middle) with its min
// and max when the range came back downsampled.
function historyPoints(history, name) {
  if (history.resolution === "raw") {
    return history.samples
      .filter((s) => typeof s.figures[name] === "number")
      .map((s) => ({ t: Date.parse(s.at), v: s.figures[name] }));
  }
  return history.buckets
    .filter((b) => b.figures[name] !== undefined)
    .map((b) => {
      const { avg, min, max } = b.figures[name];
      return { t: (Date.parse(b.from) + Date.parse(b.to)) / 2, v: avg, lo: min, hi: max };
    });
}

function renderCommands(d) {
  const box = $("#commands");
  if (!d.commands.length) {
    box.replaceChildren(el("p", { class: "muted", text: dt("detail.no_commands") }));
    return;
  }
  const allowed = KEEPERS.has(state.user?.role);
  box.replaceChildren(
    ...d.commands.map((command) => {
      const button = el("button", { type: "button", "data-command": command, text: command });
      button.disabled = !allowed;
      button.addEventListener("click", () => sendCommand(d.id, command, button));
      return button;
    }),
  );
}

async function sendCommand(deviceId, command, button) {
  const result = $("#command-result");
  button.disabled = true;
  result.textContent = dt("command.sent", { command });
  try {
    const reply = await api("POST", `/api/v1/devices/${encodeURIComponent(deviceId)}/commands`, { command, args: {} });
    result.textContent = reply.ok
      ? dt("command.ok", { command })
      : dt("command.failed", { command, error: reply.error ?? "" });
  } catch (error) {
    result.textContent = dt("command.failed", { command, error: error.message });
  } finally {
    button.disabled = false;
  }
}

// -- start ----------------------------------------------------------------------------------

async function start() {
  translatePage();
  showLive();
  try {
    const session = await api("GET", "/api/v1/auth/me");
    state.user = session.user;
  } catch {
    feed.stop();
    $("#page").hidden = true;
    $("#signed-out").hidden = false;
    return;
  }
  $("#who-name").textContent = state.user.display_name || state.user.username;
  $("#who").hidden = false;
  $("#signed-out").hidden = true;
  $("#page").hidden = false;
  feed.start();
}

for (const button of document.querySelectorAll("[data-lang]")) {
  button.addEventListener("click", () => setLang(button.dataset.lang));
}
onLangChange(() => {
  translatePage();
  showLive();
  renderList();
  renderAlarms();
  renderDetail();
});
for (const select of document.querySelectorAll("#filters select")) {
  select.addEventListener("change", renderList);
}
start();
