// The console shell: sign-in, header, the room layout (queue, map, panels, notifications), the
// live feed, panel modules, keyboard shortcuts, and keeping typed text across an expired session.

import * as api from "./api.js";
import { EventStrip } from "./events.js";
import { addStrings, applyTranslations, lang, onLangChange, setLang, t } from "./i18n.js";
import { LiveFeed } from "./live.js";
import { LAYERS, OpsMap } from "./map.js";
import { Notifications } from "./notify.js";
import { alarmList, alertList, caseSummary, deviceList, kpiBlock, unitList } from "./panels.js";
import { Queue } from "./queue.js";
import { StatusPanel } from "./status.js";
import { Store } from "./store.js";
import { ago, formatDateTime, formatTime, setZone, zoneLabel } from "./time.js";
import { redrawByTopic } from "./ui.js";
import { mount as mountWallAdmin } from "./wall-admin.js";
import { WallControl } from "./walls.js";

const $ = (selector) => document.querySelector(selector);
const DRAFTS_KEY = "posko.drafts";
const USER_KEY = "posko.username";

const status = new StatusPanel($("#shell"));
const events = new EventStrip($("#events"), $("#events-empty"));
const store = new Store();
const notifications = new Notifications($("#notifications"), () => session?.user.role);
const subscribers = new Set(); // [prefix, handler] of panel modules
const mounted = new Map(); // panel name -> what its mount() returned
let settings = null;
let session = null;
let map = null;
let queue = null;
let walls = null;
let selectedCase = null;
let selectedCamera = null;
let selectedDevice = null;
let alarmMessage = null; // [tone, text] of the last acknowledgement
let liveState = "closed";
let wasOpen = false; // the live socket was open in this session: connecting again means lost
let liveLost = false;
let needsSnapshot = false;
let clockTimer = null;
let snapshots = 0; // snapshots of the hub taken and drawn since the page opened

const feed = new LiveFeed({
  onState: showLive,
  onMessage: (message) => {
    if (message.type === "hello") {
      showHub(message.hub_id);
      // After a reconnect the hub may have restarted: take a fresh snapshot of everything.
      if (needsSnapshot) refreshAll();
      needsSnapshot = true;
    } else if (message.type === "event") {
      status.apply(message);
      events.add(message);
      store.apply(message);
      notifications.consider(message);
      walls?.apply(message);
      for (const [prefix, handler] of subscribers) {
        if (message.topic.startsWith(prefix)) handler(message);
      }
    }
  },
  onEnded: () => checkSession(),
});

// -- the context panel modules get ------------------------------------------------------------

const caseListeners = new Set();
const deviceListeners = new Set();
const context = {
  api,
  store,
  live: {
    /** Call handler(message) for every live event whose topic starts with prefix. */
    subscribe(prefix, handler) {
      const entry = [prefix, handler];
      subscribers.add(entry);
      return () => subscribers.delete(entry);
    },
  },
  i18n: { t, lang, onLangChange, addStrings },
  time: { formatTime, formatDateTime, ago, zoneLabel },
  selection: {
    case: () => selectedCase,
    selectCase: (id) => selectCase(id),
    onCase(handler) {
      caseListeners.add(handler);
      return () => caseListeners.delete(handler);
    },
    device: () => selectedDevice,
    selectDevice: (id) => selectDevice(id),
    onDevice(handler) {
      deviceListeners.add(handler);
      return () => deviceListeners.delete(handler);
    },
  },
  map: {
    focus: (lat, lon, zoom) => map?.focus(lat, lon, zoom),
    view: () => map?.view(),
  },
  get user() {
    return session?.user ?? null;
  },
};

// -- header -----------------------------------------------------------------------------------

function showLive(state) {
  // A socket lost, or refused at its handshake (signed out), looks like a lost hub: ask which
  // it is, on every failed attempt (the session may have ended while the hub was away).
  if (state === "closed" && liveState !== "closed" && session) {
    api.me().catch((error) => {
      if (error.status === 401) sessionEnded();
    });
  }
  liveState = state;
  const live = $("#live");
  live.dataset.state = state;
  $("#live-text").textContent = t(`live.${state}`);
  // While disconnected the panels show the last known state: say so, not only by dimming.
  const stale = state !== "open";
  $("#stale").hidden = !stale;
  $("#shell").dataset.stale = String(stale);
  // ... and in a banner under the header, where operators look (the hub panel is folded).
  if (state === "open") liveLost = false;
  else if (wasOpen || state === "closed") liveLost = true;
  if (state === "open") wasOpen = true;
  showLostBanner();
}

function showLostBanner() {
  const banner = $("#offline-banner");
  banner.hidden = !(liveLost && session && !$("#shell").hidden);
  $("#offline-text").textContent = t("live.lost");
}

function showHub(hubId) {
  $("#hub-id").textContent = hubId;
  $("#hub-id").hidden = false;
}

const AGE_REDRAW_S = 30;
let ticks = 0;

function tickClock() {
  $("#clock").textContent = `${formatTime(new Date(), true)} ${zoneLabel()}`;
  // Ages, stale positions and SLA clocks move on in a quiet room too: redraw what shows them.
  ticks += 1;
  if (ticks % AGE_REDRAW_S === 0) store.changed("clock");
}

// -- data -------------------------------------------------------------------------------------

async function refreshStatus() {
  try {
    const snapshot = await api.hubStatus();
    showHub(snapshot.hub_id);
    status.show(snapshot);
  } catch (error) {
    if (error.status === 401) sessionEnded();
  }
}

async function refreshAll() {
  await Promise.allSettled([refreshStatus(), store.load(), walls?.load()]);
  snapshots += 1;
  renderPanels();
  for (const panel of mounted.values()) panel?.refresh?.();
}

// What each kind of live change redraws. A unit's position report (many a second in a busy
// room) must not rebuild the queue, the case and every list: only its marker, its list and the
// figures.
const renderPanels = redrawByTopic(
  [
    ["case.", ["queue", "map", "case", "kpis"]],
    ["unit.", ["map", "kpis", "units"]],
    ["device.health", ["map", "kpis", "devices", "alarms"]],
    ["device.registered", ["map", "devices", "alarms"]],
    ["device.alarm", ["kpis", "alarms"]],
    ["alert.", ["map", "alerts"]],
  ],
  (parts) => {
    const due = (part) => !parts || parts.has(part);
    // How many snapshots the panels have drawn: a page (or a test) can tell the first load is in.
    document.body.dataset.snapshots = String(snapshots);
    if (due("queue")) {
      queue?.render();
      queue?.select(selectedCase);
    }
    if (due("map")) map?.render();
    if (due("case") && !mounted.has("cases")) $("#case-panel").replaceChildren(caseSummary(store.cases.get(selectedCase), store));
    if (due("kpis")) $("#kpis").replaceChildren(...kpiBlock(store));
    if (due("units") && !mounted.has("units")) $("#unit-panel").replaceChildren(unitList(store));
    if (due("devices") && !mounted.has("devices")) $("#device-panel").replaceChildren(deviceList(store, 50, { onSelect: selectDevice, selected: selectedDevice }));
    if (due("alerts")) $("#alert-panel").replaceChildren(alertList(store));
    if (due("alarms")) renderAlarms();
  },
);
store.addEventListener("change", (event) => renderPanels(event.detail?.topic));

const ALARM_KEEPERS = new Set(["technician", "supervisor"]);

function renderAlarms() {
  const role = session?.user.role;
  const keep = ALARM_KEEPERS.has(role);
  const focused = document.activeElement?.closest?.("#alarm-panel [data-alarm]")?.dataset.alarm;
  $("#alarm-panel").replaceChildren(alarmList(store, { canAck: keep, onAck: acknowledgeAlarm }));
  if (focused) $(`#alarm-panel .alarm-ack[data-alarm="${focused}"]`)?.focus();
  const escalated = store.kpis().alarmsEscalated;
  const banner = $("#alarm-escalated");
  banner.hidden = !(role === "supervisor" && escalated > 0);
  banner.textContent = banner.hidden ? "" : `⬆ ${escalated} · ${t("alarms.escalated")}`;
  const result = $("#alarm-result");
  result.hidden = !alarmMessage;
  result.dataset.tone = alarmMessage?.[0] ?? "";
  result.textContent = alarmMessage?.[1] ?? "";
}

async function acknowledgeAlarm(alarm) {
  try {
    const row = await api.api("POST", `/api/v1/alarms/${encodeURIComponent(alarm.id)}/ack`);
    store.alarms.set(String(row.id), { ...store.alarms.get(String(row.id)), ...row });
    alarmMessage = ["ok", `✓ ${t("alarms.acked", { name: row.acknowledged_by })}`];
    store.changed("alarm.acknowledged", row);
  } catch (error) {
    if (error.status === 401) return;
    alarmMessage = ["bad", `✕ ${t("alarms.ack_failed", { message: error.message })}`];
    renderPanels();
  }
}

function selectDevice(id) {
  selectedDevice = id === null ? null : String(id);
  for (const handler of deviceListeners) handler(selectedDevice);
  renderPanels();
}

function selectCase(id) {
  selectedCase = id === null ? null : String(id);
  const item = store.cases.get(selectedCase);
  if (item?.lat != null && map) map.focus(item.lat, item.lon);
  for (const handler of caseListeners) handler(selectedCase);
  renderPanels();
}

async function mountPanels() {
  // Modules another part of the hub ships (js/cases.js, …) take over their region.
  for (const name of settings.panels ?? []) {
    if (mounted.has(name)) continue;
    const region = document.querySelector(`[data-panel="${name}"]`);
    if (!region) continue;
    // Claim the region before the first await: a second sign-in path or a live render that
    // runs meanwhile must neither mount the module twice nor draw the fallback over it.
    mounted.set(name, null);
    try {
      const module = await import(`./${name}.js`);
      mounted.set(name, (await module.mount(region, context)) ?? null);
    } catch (error) {
      mounted.delete(name);
      console.error(`panel ${name} failed to mount`, error);
    }
  }
}

// -- sign-in, sign-out and expired sessions ---------------------------------------------------

async function showShell(current) {
  api.sessionChanged();
  session = current;
  const { user } = current;
  $("#login").hidden = true;
  $("#login-note").hidden = true;
  $("#shell").hidden = false;
  for (const id of ["#live", "#who", "#logout", "#help", "#clock"]) $(id).hidden = false;
  $("#who-name").textContent = user.display_name || user.username;
  $("#who-role").textContent = t(`role.${user.role}`);
  $("#who-role").dataset.role = user.role;
  try {
    localStorage.setItem(USER_KEY, user.username);
  } catch {
    // Not remembered.
  }
  needsSnapshot = false;
  wasOpen = false;
  liveLost = false;
  showLostBanner();
  events.clear();
  notifications.clear();
  feed.start();
  $("#main").focus();
  try {
    settings = await api.api("GET", "/api/v1/console/settings");
  } catch (error) {
    if (error.status === 401) sessionEnded();
    return;
  }
  setZone(settings.timezone, settings.zone_label);
  clearInterval(clockTimer);
  tickClock();
  clockTimer = setInterval(tickClock, 1000);
  if (!map) {
    map = new OpsMap($("#map"), store, settings, {
      onSelect: (kind, item) => {
        if (kind === "case") selectCase(item.id);
        if (kind === "cameras") selectedCamera = item;
        if (kind === "cameras" || kind === "devices") selectDevice(item.id);
      },
    });
  }
  if (!queue) queue = new Queue($("#queue"), $("#queue-empty"), $("#queue-filter"), store, selectCase);
  walls = walls ?? new WallControl($("#wall-control"), {
    store,
    get role() {
      return session?.user.role;
    },
    selectedCase: () => store.cases.get(selectedCase) ?? null,
    mapView: () => map.view(),
    // The layers the console map shows now (the layer control may have changed them).
    mapLayers: () => LAYERS.filter((name) => map.map.hasLayer(map.groups[name])),
    selectedCamera: () => selectedCamera,
  });
  await mountPanels();
  if (!mounted.has("wall-admin")) mounted.set("wall-admin", mountWallAdmin($("#wall-admin"), context));
  await refreshAll();
  renderPanels();
  restoreDrafts();
}

function showLogin({ expired = false } = {}) {
  feed.stop();
  status.clear();
  clearInterval(clockTimer);
  $("#shell").hidden = true;
  for (const id of ["#live", "#who", "#logout", "#hub-id", "#help", "#clock"]) $(id).hidden = true;
  wasOpen = false;
  liveLost = false;
  showLostBanner();
  $("#login").hidden = false;
  $("#password").value = "";
  $("#login-note").textContent = expired ? t("login.expired") : "";
  $("#login-note").hidden = !expired;
  let remembered = "";
  try {
    remembered = localStorage.getItem(USER_KEY) ?? "";
  } catch {
    // Nothing remembered.
  }
  if (!$("#username").value) $("#username").value = remembered;
  ($("#username").value ? $("#password") : $("#username")).focus();
}

/** The session ended under us: keep what was typed, then ask to sign in again. */
function sessionEnded() {
  // Already asking: a late answer to an old call must not clear what is being typed there.
  if ($("#shell").hidden && !$("#login").hidden) return;
  api.sessionChanged(); // the other calls of the ended session will answer 401 too
  if (!$("#shell").hidden) saveDrafts();
  session = null;
  showLogin({ expired: true });
}

function saveDrafts() {
  const drafts = {};
  for (const field of document.querySelectorAll("#shell input, #shell textarea, #shell select")) {
    if (!field.id || field.type === "password" || field.type === "hidden") continue;
    if (field.tagName === "SELECT" && !field.hasAttribute("data-draft")) continue;
    if (field.value) drafts[field.id] = field.value;
  }
  try {
    sessionStorage.setItem(DRAFTS_KEY, JSON.stringify(drafts));
  } catch {
    // Storage disabled: the fields themselves survive as long as the page does.
  }
}

function restoreDrafts() {
  let drafts = {};
  try {
    drafts = JSON.parse(sessionStorage.getItem(DRAFTS_KEY) ?? "{}");
    sessionStorage.removeItem(DRAFTS_KEY);
  } catch {
    return;
  }
  for (const [id, value] of Object.entries(drafts)) {
    const field = document.getElementById(id);
    if (!field || field.value) continue;
    field.value = value;
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }
}

async function checkSession() {
  try {
    await showShell(await api.me());
  } catch {
    if (!$("#shell").hidden) sessionEnded();
    else if ($("#login").hidden) showLogin(); // already asking: keep its note
  }
}

async function submitLogin(event) {
  event.preventDefault();
  const username = $("#username").value.trim();
  const password = $("#password").value;
  const message = $("#login-error");
  message.hidden = true;
  if (!username || !password) {
    showError(t("login.missing"));
    return;
  }
  const button = event.submitter ?? $("#login-form button");
  button.disabled = true;
  try {
    const current = await api.login(username, password);
    await showShell(current);
  } catch (error) {
    if (error.code === "invalid_credentials") showError(t("login.failed"));
    else if (error.status === 429) showError(t("login.throttled"));
    else showError(t("login.error", { message: error.message }));
    $("#password").select();
  } finally {
    button.disabled = false;
  }
}

function showError(text) {
  const message = $("#login-error");
  message.textContent = text;
  message.hidden = false;
}

async function signOut() {
  // Stop listening first: the hub closes this session's sockets (1008), which is no expiry.
  feed.stop();
  session = null;
  api.sessionChanged(); // calls still in flight will answer 401: that is no expiry
  try {
    await api.logout();
  } finally {
    sessionStorage.removeItem(DRAFTS_KEY);
    showLogin();
  }
}

// -- keyboard shortcuts -----------------------------------------------------------------------

function typing(target) {
  return target.closest?.("input, textarea, select, [contenteditable='true']");
}

function onKey(event) {
  if ($("#shell").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "Escape") {
    if (typing(event.target)) {
      event.preventDefault(); // leave the field, keeping its text (a search box would clear)
      event.target.blur();
    } else if (!$("#shortcuts").open) {
      selectCase(null);
    }
    return;
  }
  if (typing(event.target) || $("#shortcuts").open) return;
  const key = event.key.toLowerCase();
  const actions = {
    "/": () => $("#queue-filter").focus(),
    j: () => queue?.step(1),
    k: () => queue?.step(-1),
    w: () => walls?.pushCase(),
    m: () => walls?.pushMap(),
    r: () => refreshAll(),
    l: () => setLang(lang() === "id" ? "en" : "id"),
    "?": () => $("#shortcuts").showModal(),
  };
  if (/^[1-9]$/.test(key)) {
    event.preventDefault();
    walls?.selectTile(Number(key) - 1);
  } else if (key in actions) {
    event.preventDefault();
    actions[key]();
  }
}

// -- start ------------------------------------------------------------------------------------

function start() {
  applyTranslations(document);
  api.onUnauthorized(() => sessionEnded());
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => setLang(button.dataset.lang));
  }
  onLangChange(() => {
    showLive(liveState);
    if (status.snapshot) status.render();
    const role = $("#who-role").dataset.role;
    if (role) $("#who-role").textContent = t(`role.${role}`);
    for (const input of document.querySelectorAll("[data-i18n-placeholder]")) input.placeholder = t(input.dataset.i18nPlaceholder);
    walls?.render();
    renderPanels();
  });
  for (const input of document.querySelectorAll("[data-i18n-placeholder]")) input.placeholder = t(input.dataset.i18nPlaceholder);
  $("#login-form").addEventListener("submit", submitLogin);
  $("#logout").addEventListener("click", signOut);
  $("#help").addEventListener("click", () => $("#shortcuts").showModal());
  document.addEventListener("keydown", onKey);
  checkSession();
}

start();
