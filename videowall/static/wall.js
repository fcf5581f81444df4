// A wall screen: the wall's tiles in a grid, kept current from its live feed; a heartbeat to the
// hub (it shows in device health); a screen that loses the hub says so in large type and
// reconnects by itself. It signs in with its pairing token, or a viewer's session.

import * as api from "/static/js/api.js";
import { addStrings, applyTranslations, setLang, t } from "/static/js/i18n.js";
import { LiveFeed } from "/static/js/live.js";
import { OpsMap } from "/static/js/map.js";
import { alertList, caseSummary, deviceList, kpiBlock, unitList } from "/static/js/panels.js";
import { isOpen, Store } from "/static/js/store.js";
import { ago, formatTime, setZone, zoneLabel } from "/static/js/time.js";
import { el, priorityBadge, redrawByTopic } from "/static/js/ui.js";

addStrings("id", {
  "screen.connected": "TERSAMBUNG",
  "screen.connecting": "MENYAMBUNG ULANG…",
  "screen.closed": "TERPUTUS DARI HUB — menyambung ulang…",
  "screen.no_wall": "Tidak ada dinding bernama {name}",
  "screen.sign_in": "Masuk untuk menampilkan dinding {name}",
  "screen.pair_failed": "Token layar tidak berlaku. Minta supervisor memasangkan layar ini lagi.",
  "screen.no_urgent": "Belum ada kasus prioritas tinggi.",
  "screen.no_cameras": "Tidak ada kamera terdaftar di dekatnya.",
  "screen.no_signal": "TIDAK ADA GAMBAR",
  "screen.from_case": "{distance} dari {number}",
  "screen.case_closed": "KASUS {number} SUDAH DITUTUP ({status})",
  "screen.case_missing": "Kasus #{id} tidak ditemukan di hub ini.",
  "screen.case_loading": "Memuat kasus #{id}…",
});
addStrings("en", {
  "screen.connected": "CONNECTED",
  "screen.connecting": "RECONNECTING…",
  "screen.closed": "LOST THE HUB — reconnecting…",
  "screen.no_wall": "There is no wall named {name}",
  "screen.sign_in": "Sign in to show wall {name}",
  "screen.pair_failed": "This screen's token is not valid. Ask a supervisor to pair the screen again.",
  "screen.no_urgent": "No high-priority case yet.",
  "screen.no_cameras": "No registered camera nearby.",
  "screen.no_signal": "NO PICTURE",
  "screen.from_case": "{distance} from {number}",
  "screen.case_closed": "CASE {number} IS CLOSED ({status})",
  "screen.case_missing": "Case #{id} was not found on this hub.",
  "screen.case_loading": "Loading case #{id}…",
});

const $ = (selector) => document.querySelector(selector);
const HEARTBEAT_MS = 10000;
const QUEUE_ROWS = 8;
const name = decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] ?? "");
const params = new URLSearchParams(location.search);
const screen = params.get("screen") || "main";
const tokenKey = `posko.wall.${name}.${screen}.token`;
const lang = params.get("lang");
if (lang) setLang(lang);

const store = new Store();
const started = performance.now();
let settings = null;
let wall = null;
let cells = []; // per tile: { key, element, map, timer }
let heartbeat = null;
let resync = false;
let linkState = "connecting";
let booting = null;
let bootAgain = false;
let boots = 0;

const feed = new LiveFeed({
  path: `/api/v1/walls/${encodeURIComponent(name)}/live?screen=${encodeURIComponent(screen)}`,
  onState: showLink,
  onMessage: (message) => {
    if (message.type === "hello") {
      if (resync) reload();
      resync = true;
      sendHeartbeat();
    } else if (message.type === "event") {
      if (message.topic === "wall.changed") {
        if (message.key === name) showWall(message.payload);
      } else {
        store.apply(message); // its change redraws the tiles that show it
      }
    }
  },
  onEnded: () => boot(),
});

// -- connection state -------------------------------------------------------------------------

function showLink(state) {
  // A socket lost, or refused before it opened: either may mean the session ended.
  if (state === "closed" && linkState !== "closed") probeSession();
  linkState = state;
  const link = $("#wall-link");
  link.dataset.state = state;
  $("#wall-link-text").textContent = t(state === "open" ? "screen.connected" : state === "connecting" ? "screen.connecting" : "screen.closed");
  document.body.dataset.link = state;
}

/** A socket refused at its handshake looks like any lost connection: ask whether we are signed out. */
async function probeSession() {
  const at = boots;
  try {
    await api.me();
  } catch (error) {
    if (error.status === 401 && at === boots) boot(); // unless a sign-in already happened
  }
}

function sendHeartbeat() {
  feed.send({
    type: "heartbeat",
    figures: {
      version: wall?.version ?? null,
      tiles: wall ? wall.rows * wall.columns : 0,
      width: window.innerWidth,
      height: window.innerHeight,
      uptime_s: Math.round((performance.now() - started) / 1000),
      lang: document.documentElement.lang,
    },
  });
}

// -- sign-in ----------------------------------------------------------------------------------

function takePairingToken() {
  const match = location.hash.match(/pair=([A-Za-z0-9_-]+)/);
  if (!match) return;
  try {
    localStorage.setItem(tokenKey, match[1]);
  } catch {
    // Kept for this page only.
    window.pairingToken = match[1];
  }
  history.replaceState(null, "", location.pathname + location.search);
}

function savedToken() {
  try {
    return localStorage.getItem(tokenKey) ?? window.pairingToken ?? null;
  } catch {
    return window.pairingToken ?? null;
  }
}

async function signIn() {
  try {
    await api.me();
    return true;
  } catch (error) {
    if (error.status !== 401) throw error;
  }
  const token = savedToken();
  if (token) {
    try {
      await api.api("POST", `/api/v1/walls/${encodeURIComponent(name)}/screens/${encodeURIComponent(screen)}/session`, { token });
      return true;
    } catch (error) {
      if (error.status !== 401 && error.status !== 404) throw error;
      // Unpaired (or the wall is gone): say so, and let a person sign in instead.
      message("screen.pair_failed", "", true);
      return false;
    }
  }
  message("screen.sign_in", "", true);
  return false;
}

function message(titleKey, text, login) {
  $("#wall-grid").hidden = true;
  $("#wall-message").hidden = false;
  $("#wall-message-title").textContent = t(titleKey, { name });
  $("#wall-message-text").textContent = text;
  $("#wall-login").hidden = !login;
  if (login) $("#wall-username").focus();
}

async function submitLogin(event) {
  event.preventDefault();
  try {
    await api.login($("#wall-username").value.trim(), $("#wall-password").value);
    $("#wall-password").value = "";
    boot();
  } catch (error) {
    $("#wall-login-error").textContent = error.message;
    $("#wall-login-error").hidden = false;
  }
}

// -- the wall ---------------------------------------------------------------------------------

async function reload() {
  try {
    const [current] = await Promise.all([api.api("GET", `/api/v1/walls/${encodeURIComponent(name)}`), store.load()]);
    showWall(current);
  } catch (error) {
    if (error.status === 404) message("screen.no_wall", "", false);
    else if (error.status === 401) boot();
  }
}

function showWall(next) {
  if (next.deleted) {
    wall = null;
    message("screen.no_wall", "", false);
    return;
  }
  wall = next;
  $("#wall-message").hidden = true;
  const grid = $("#wall-grid");
  grid.hidden = false;
  $("#wall-title").textContent = wall.title || wall.name;
  document.title = `Posko · ${wall.title || wall.name}`;
  grid.className = `wall-grid rows-${wall.rows} columns-${wall.columns}`;
  grid.dataset.version = String(wall.version);
  const count = wall.rows * wall.columns;
  while (cells.length > count) dropCell(cells.pop());
  for (let index = 0; index < count; index += 1) {
    const tile = wall.tiles[index] ?? { kind: "empty", title: "" };
    const key = JSON.stringify(tile);
    if (cells[index]?.key === key) continue;
    if (cells[index]) dropCell(cells[index]);
    cells[index] = makeCell(index, tile, key);
  }
  grid.replaceChildren(...cells.map((cell) => cell.element));
  for (const cell of cells) cell.map?.invalidate();
  refreshData();
}

function dropCell(cell) {
  clearInterval(cell.timer);
  for (const timer of cell.timers ?? []) clearInterval(timer);
  cell.map?.destroy();
}

function makeCell(index, tile, key) {
  const body = el("div", { className: "tile-body" });
  const element = el(
    "section",
    { className: "tile", dataset: { index: String(index), kind: tile.kind } },
    el("h2", { className: "tile-title" }, el("span", { className: "tile-index" }, String(index + 1)), " ", tile.title || t(`kind.${tile.kind}`)),
    body,
  );
  const cell = { key, tile, element, body, map: null, timer: null };
  if (tile.kind === "map") {
    body.classList.add("tile-map");
    // The map needs its box laid out before it draws; create it on the next frame.
    requestAnimationFrame(() => {
      if (cells[index] !== cell) return;
      cell.map = new OpsMap(body, store, settings, {
        interactive: false,
        layers: tile.layers,
        view: { lat: tile.lat, lon: tile.lon, zoom: tile.zoom },
      });
    });
  } else if (tile.kind === "camera") {
    cameraView(cell, tile);
  }
  return cell;
}

function cameraSource(tile) {
  const device = tile.device_id ? store.devices.get(tile.device_id) : null;
  const attributes = device?.attributes ?? {};
  return {
    stream: tile.stream_url ?? attributes.stream_url ?? null,
    snapshot: tile.snapshot_url ?? attributes.snapshot_url ?? null,
    refresh: (tile.refresh_seconds ?? 2) * 1000,
    device,
  };
}

function cameraView(cell, tile) {
  const source = cameraSource(tile);
  cell.source = source.stream ?? source.snapshot;
  const image = el("img", { className: "camera", alt: tile.title || tile.device_id || "camera" });
  const status = el("p", { className: "camera-status", hidden: true }, el("span", { "aria-hidden": "true" }, "✕ "), t("screen.no_signal"));
  image.addEventListener("error", () => {
    status.hidden = false;
    image.classList.add("broken");
  });
  image.addEventListener("load", () => {
    status.hidden = true;
    image.classList.remove("broken");
  });
  if (source.stream) {
    image.src = source.stream;
  } else if (source.snapshot) {
    const next = () => {
      const separator = source.snapshot.includes("?") ? "&" : "?";
      image.src = `${source.snapshot}${separator}t=${Date.now()}`;
    };
    next();
    cell.timer = setInterval(next, source.refresh);
  } else {
    status.hidden = false;
  }
  cell.body.replaceChildren(image, status);
}

// The tiles each kind of live change redraws: a unit's position report (many a second in a busy
// room) moves the map and counts, and leaves the queue, the case and the cameras alone. Without
// a topic (a snapshot, the half-minute tick, a new layout) every tile is drawn.
const refreshData = redrawByTopic(
  [
    ["case.", ["case", "queue", "kpis", "follow", "map"]],
    ["unit.", ["units", "kpis", "map"]],
    ["device.health", ["devices", "kpis", "map", "camera", "follow"]],
    ["device.registered", ["devices", "map", "camera", "follow"]],
    ["device.alarm", ["kpis"]],
    ["alert.", ["alerts", "map"]],
  ],
  (kinds) => drawTiles(kinds),
);

function drawTiles(kinds) {
  for (const cell of cells) {
    const { tile, body } = cell;
    if (kinds && !kinds.has(tile.kind)) continue;
    switch (tile.kind) {
      case "case":
        caseTile(cell);
        break;
      case "queue":
        body.replaceChildren(queueBoard());
        break;
      case "alerts":
        body.replaceChildren(alertList(store));
        break;
      case "units":
        body.replaceChildren(unitList(store));
        break;
      case "devices":
        body.replaceChildren(deviceList(store));
        break;
      case "kpis":
        body.replaceChildren(el("div", { className: "kpis" }, kpiBlock(store)));
        break;
      case "follow":
        follow(cell);
        break;
      case "map":
        cell.map?.render();
        break;
      case "camera": {
        // A camera registered (or given its URLs) after the tile was pushed: show it now.
        const source = cameraSource(tile);
        if (!cell.source && (source.stream || source.snapshot)) {
          clearInterval(cell.timer);
          cameraView(cell, tile);
        }
        break;
      }
      default:
        break;
    }
  }
}

/** One case: from the live store while open, else as the hub has it (closed), or "not found". */
function caseTile(cell) {
  const id = String(cell.tile.case_id);
  const item = store.cases.get(id) ?? cell.fetched ?? null;
  if (item) {
    const closed = isOpen(item)
      ? null
      : el("p", { className: "case-closed" }, el("span", { "aria-hidden": "true" }, "■ "), t("screen.case_closed", { number: item.number, status: t(`status.${item.status}`) }));
    cell.body.replaceChildren(closed ?? "", caseSummary(item, store));
    return;
  }
  if (cell.missing) {
    cell.body.replaceChildren(el("p", { className: "case-missing" }, el("span", { "aria-hidden": "true" }, "✕ "), t("screen.case_missing", { id })));
    return;
  }
  cell.body.replaceChildren(el("p", { className: "muted" }, t("screen.case_loading", { id })));
  if (cell.fetching) return;
  cell.fetching = true;
  api.api("GET", `/api/v1/cases/${encodeURIComponent(id)}`).then(
    (body) => {
      const { history, notes, duplicates, ...rest } = body;
      cell.fetched = rest;
      refreshData();
    },
    (error) => {
      if (error.status === 404) {
        cell.missing = true;
        refreshData();
      } else {
        setTimeout(() => {
          cell.fetching = false;
          refreshData();
        }, 5000); // the hub is away: ask again
      }
    },
  );
}

function queueBoard() {
  const items = store.openCases().slice(0, QUEUE_ROWS);
  if (!items.length) return el("p", { className: "muted" }, t("queue.empty"));
  return el(
    "ol",
    { className: "board" },
    items.map((item) =>
      el(
        "li",
        { dataset: { priority: item.priority, case: String(item.id) } },
        priorityBadge(item.priority),
        el("span", { className: "number" }, item.number),
        el("span", { className: "board-title" }, item.title),
        el("span", { className: "muted" }, ago(item.created_at)),
        store.breached(item) ? el("span", { className: "sla-breached" }, "⚠ SLA") : null,
      ),
    ),
  );
}

/** The follow tile: the cameras nearest the newest high-priority case, swapped as cases come. */
function follow(cell) {
  const urgent = store.newestUrgent();
  const count = cell.tile.cameras ?? 1;
  if (!urgent) {
    cell.body.replaceChildren(el("p", { className: "muted" }, t("screen.no_urgent")));
    cell.following = null;
    return;
  }
  const nearest = store.nearestCameras(urgent.lat, urgent.lon, count);
  const key = `${urgent.id}:${nearest.map((n) => n.camera.id).join(",")}`;
  if (cell.following === key) return;
  cell.following = key;
  for (const timer of cell.timers ?? []) clearInterval(timer);
  cell.timers = [];
  if (!nearest.length) {
    cell.body.replaceChildren(el("p", {}, priorityBadge(urgent.priority), ` ${urgent.number} ${urgent.title}`), el("p", { className: "muted" }, t("screen.no_cameras")));
    return;
  }
  const views = nearest.map(({ camera, metres }) => {
    const view = { body: el("div", { className: "follow-camera" }), timer: null };
    cameraView(view, { kind: "camera", device_id: String(camera.id), title: camera.name });
    if (view.timer) cell.timers.push(view.timer);
    const distance = metres < 1000 ? `${Math.round(metres)} m` : `${(metres / 1000).toFixed(1)} km`;
    view.body.append(el("p", { className: "caption" }, `${camera.name ?? camera.id} · ${t("screen.from_case", { distance, number: urgent.number })}`));
    return view.body;
  });
  cell.body.replaceChildren(el("div", { className: `follow count-${views.length}` }, views));
}

function tickClock() {
  $("#wall-clock").textContent = `${formatTime(new Date(), true)} ${zoneLabel()}`;
}

// -- start ------------------------------------------------------------------------------------

/** Sign in, load and connect; one at a time, however many causes ask at once. */
function boot() {
  if (booting) {
    // Asked while booting (a call in this boot answered 401): boot again once this one ends,
    // or the screen would go on with a session the hub no longer takes.
    bootAgain = true;
    return booting;
  }
  booting = (async () => {
    try {
      do {
        bootAgain = false;
        boots += 1;
        await bootOnce();
      } while (bootAgain);
    } finally {
      booting = null;
    }
  })();
  return booting;
}

async function bootOnce() {
  feed.stop();
  clearInterval(heartbeat);
  let signedIn = false;
  try {
    signedIn = await signIn();
  } catch {
    setTimeout(boot, 3000); // the hub is away: try again
    showLink("closed");
    return;
  }
  if (!signedIn) return;
  try {
    settings = await api.api("GET", "/api/v1/console/settings");
  } catch {
    setTimeout(boot, 3000);
    return;
  }
  setZone(settings.timezone, settings.zone_label);
  resync = false;
  await reload();
  feed.start();
  heartbeat = setInterval(sendHeartbeat, HEARTBEAT_MS);
}

function start() {
  applyTranslations(document);
  takePairingToken();
  $("#wall-login").addEventListener("submit", submitLogin);
  showLink("connecting");
  tickClock();
  setInterval(tickClock, 1000);
  setInterval(() => refreshData(), 30000); // ages and SLA clocks move on their own
  // Live events, and e.g. a case as the hub has it, fetched after its event.
  store.addEventListener("change", (event) => refreshData(event.detail?.topic));
  boot();
}

start();
