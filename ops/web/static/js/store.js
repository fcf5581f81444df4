// What the console and the wall show, in one place: a snapshot from the API, then live events.
//
// Sources are feature-detected: a list route another part of the hub does not serve (yet) leaves
// its layer empty and marked "no data source", never filled with made-up data.
//   cases    GET /api/v1/cases?status=open (every page) + case.opened / case.changed /
//            case.sla_breached (which carry duplicates and the breach too)
//   devices  GET /api/v1/devices  + device.health (state, wall screens included)
//   alarms   GET /api/v1/alarms?status=active  + device.alarm
//   units    GET /api/v1/units    + unit.* events carrying an id
//   alerts   GET /api/v1/alerts   + alert.* events carrying an id
//   centers  GET /api/v1/centers

import * as api from "./api.js";

export const PRIORITIES = ["critical", "high", "medium", "low"];
export const OPEN_STATUSES = new Set(["new", "triaged", "assigned", "in_progress", "reopened"]);
const CASE_TOPICS = new Set(["case.opened", "case.changed", "case.sla_breached"]);
/** Cases fetched per page, and at most in all (beyond it the queue says it is incomplete). */
const CASE_PAGE = 200;
export const MAX_OPEN_CASES = 5000;
const SOURCES = {
  cases: (store) => store.loadOpenCases(),
  alarms: "/api/v1/alarms?status=active&limit=1000",
  devices: "/api/v1/devices",
  units: "/api/v1/units",
  alerts: "/api/v1/alerts",
  centers: "/api/v1/centers",
};

/** The items of a list answer, whichever envelope the route uses. */
function items(body, key) {
  if (Array.isArray(body)) return body;
  if (body && typeof body === "object") {
    for (const name of [key, "items", "results", "data"]) {
      if (Array.isArray(body[name])) return body[name];
    }
  }
  return [];
}

function idOf(item) {
  return String(item.id ?? item.device_id ?? item.unit_id ?? item.alert_id ?? "");
}

export function priorityRank(priority) {
  const rank = PRIORITIES.indexOf(priority);
  return rank < 0 ? PRIORITIES.length : rank;
}

/** The hub's dispatch.stale_after when a unit record does not carry it. */
const DEFAULT_STALE_AFTER_S = 900;

/** Stale: no position, or one older than the hub's dispatch.stale_after (sent with each unit). */
export function isStale(unit, now = Date.now()) {
  if (!unit.position_at) return true;
  const at = Date.parse(unit.position_at);
  return !Number.isFinite(at) || now - at > (unit.stale_after_s ?? DEFAULT_STALE_AFTER_S) * 1000;
}

export function isOpen(item) {
  return OPEN_STATUSES.has(item.status);
}

/** Metres between two points (haversine). */
export function distance(lat1, lon1, lat2, lon2) {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a =
    Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 6371000 * 2 * Math.asin(Math.min(1, Math.sqrt(a)));
}

export class Store extends EventTarget {
  constructor() {
    super();
    this.cases = new Map();
    this.devices = new Map();
    this.units = new Map();
    this.alerts = new Map();
    this.centers = new Map();
    this.alarms = new Map();
    this.fetching = new Set();
    this.caseFetches = new Map(); // case id -> true when another fetch is wanted after this one
    this.casesCapped = false;
    // Live events heard while a snapshot is on its way: a snapshot taken before an event would
    // otherwise wipe it (a case opened while the console loads would be missing from the queue).
    this.loads = 0;
    this.heard = [];
    this.alertsVersion = 0; // bumped whenever the alerts change, so the map redraws areas only then
    // name -> true (served), false (absent on this hub), null (not asked yet)
    this.available = { cases: null, devices: null, units: null, alerts: null, centers: null, alarms: null };
  }

  /** Fetch every source the hub serves; absent ones stay empty and marked unavailable. */
  async load() {
    this.loads += 1;
    try {
      await Promise.all(
        Object.entries(SOURCES).map(async ([name, path]) => {
          let body;
          try {
            body = typeof path === "function" ? await path(this) : await api.optional(path);
          } catch (error) {
            if (error.status === 401) throw error;
            return; // a transient failure keeps what we had
          }
          this.available[name] = body !== null;
          const map = this[name];
          map.clear();
          for (const item of items(body, name)) {
            const id = idOf(item);
            if (id) map.set(id, item);
          }
          if (name === "alerts") this.alertsVersion += 1;
          // In the order heard, so the last word on an item is the newest.
          for (const message of this.heard) this.merge(message);
        }),
      );
    } finally {
      this.loads -= 1;
      if (!this.loads) this.heard = [];
    }
    this.changed("load");
  }

  /** Every page of the open queue (following next_cursor), up to MAX_OPEN_CASES; null if absent. */
  async loadOpenCases() {
    const cases = [];
    let cursor = null;
    let capped = false;
    do {
      const query = `status=open&limit=${CASE_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const body = await api.optional(`/api/v1/cases?${query}`);
      if (body === null) return null;
      cases.push(...items(body, "cases"));
      cursor = body?.next_cursor ?? null;
      if (cursor && cases.length >= MAX_OPEN_CASES) capped = true;
    } while (cursor && !capped);
    this.casesCapped = capped;
    return { cases };
  }

  /** Apply one live event; returns true if it changed what is shown. */
  apply(message) {
    if (this.loads) this.heard.push(message);
    return this.merge(message);
  }

  merge(message) {
    const { topic, payload } = message;
    if (!payload || typeof payload !== "object") return false;
    if (CASE_TOPICS.has(topic)) {
      const id = String(payload.id);
      const before = this.cases.get(id);
      // The event carries what the queue shows (duplicates, the breach): no need to ask again.
      const next = { ...before, ...payload };
      if (topic === "case.sla_breached") {
        next.sla_breached_at = next.sla_breached_at ?? message.time ?? new Date().toISOString();
      }
      this.cases.set(id, next);
      this.available.cases = true;
      this.changed(topic, next, before);
      // A link made or undone changes the parent's count of duplicates: ask for the parent.
      for (const parent of new Set([before?.parent_id, payload.parent_id])) {
        if (parent != null && before?.parent_id !== payload.parent_id) this.fetchCase(String(parent));
      }
      return true;
    }
    if (topic === "device.alarm") {
      const id = String(payload.id);
      const before = this.alarms.get(id);
      if (payload.action === "cleared" || payload.status === "cleared") this.alarms.delete(id);
      else this.alarms.set(id, { ...before, ...payload });
      this.changed(topic, this.alarms.get(id) ?? null, before);
      return true;
    }
    if (topic === "device.health") {
      const id = String(payload.device_id);
      const before = this.devices.get(id);
      this.devices.set(id, {
        ...before,
        id,
        kind: payload.kind,
        name: payload.name ?? before?.name,
        site: payload.site ?? before?.site,
        state: payload.state,
        reason: payload.reason,
        figures: payload.figures,
        since: payload.since,
      });
      this.changed(topic, this.devices.get(id), before);
      if (this.available.devices && !(before && "attributes" in before)) this.fetchDevice(id);
      return true;
    }
    for (const [prefix, map] of [["unit.", this.units], ["alert.", this.alerts]]) {
      if (topic.startsWith(prefix)) {
        const id = idOf(payload);
        if (!id) return false;
        const before = map.get(id);
        map.set(id, { ...before, ...payload });
        if (map === this.alerts) this.alertsVersion += 1;
        this.changed(topic, map.get(id), before);
        return true;
      }
    }
    return false;
  }

  /** A device first heard of live: its registration (position, snapshot URL) from the API. */
  async fetchDevice(id) {
    if (this.fetching.has(id)) return;
    this.fetching.add(id);
    try {
      const device = await api.optional(`/api/v1/devices/${encodeURIComponent(id)}`);
      if (device) {
        this.devices.set(id, { ...device, ...this.devices.get(id), attributes: device.attributes ?? {}, lat: device.lat, lon: device.lon });
        this.changed("device.registered", this.devices.get(id));
      }
    } catch {
      // Shown without its registration until the next full load.
    } finally {
      this.fetching.delete(id);
    }
  }

  /** One case as the hub has it now (again, if it changes while being fetched). */
  async fetchCase(id) {
    if (this.caseFetches.has(id)) {
      this.caseFetches.set(id, true);
      return;
    }
    this.caseFetches.set(id, false);
    try {
      const body = await api.optional(`/api/v1/cases/${encodeURIComponent(id)}`);
      if (body) {
        const { history, notes, duplicates, ...item } = body;
        const known = this.cases.get(id);
        if (known || isOpen(item)) {
          this.cases.set(id, { ...known, ...item });
          this.changed("case.fetched", this.cases.get(id), known);
        }
      }
    } catch {
      // Shown as the event had it until the next change or full load.
    } finally {
      const again = this.caseFetches.get(id);
      this.caseFetches.delete(id);
      if (again) this.fetchCase(id);
    }
  }

  /** Active alarms (not cleared), escalated first, then newest. */
  openAlarms() {
    return [...this.alarms.values()].sort(
      (a, b) => Number(Boolean(b.escalated_at)) - Number(Boolean(a.escalated_at)) || Number(b.id) - Number(a.id),
    );
  }

  /** The linked duplicates of a case that this store holds. */
  childrenOf(id) {
    return [...this.cases.values()].filter((item) => item.parent_id != null && String(item.parent_id) === String(id));
  }

  changed(topic, item = null, before = null) {
    this.dispatchEvent(new CustomEvent("change", { detail: { topic, item, before } }));
  }

  /** Open cases, most urgent first (priority, then SLA due, then oldest). */
  openCases() {
    return [...this.cases.values()].filter(isOpen).sort((a, b) => {
      const rank = priorityRank(a.priority) - priorityRank(b.priority);
      if (rank) return rank;
      const dueA = a.sla_due_at ? Date.parse(a.sla_due_at) : Infinity;
      const dueB = b.sla_due_at ? Date.parse(b.sla_due_at) : Infinity;
      if (dueA !== dueB) return dueA - dueB;
      return Date.parse(a.created_at) - Date.parse(b.created_at);
    });
  }

  breached(item, now = Date.now()) {
    if (item.sla_breached_at) return true;
    return item.sla_due_at ? Date.parse(item.sla_due_at) < now : false;
  }

  cameras() {
    return [...this.devices.values()].filter((device) => device.kind === "camera");
  }

  /** The newest open critical/high case with a location. */
  newestUrgent() {
    return [...this.cases.values()]
      .filter((c) => isOpen(c) && priorityRank(c.priority) <= 1 && c.lat != null && c.lon != null)
      .sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at))[0] ?? null;
  }

  /** The cameras nearest a point, with their distance in metres. */
  nearestCameras(lat, lon, count) {
    return this.cameras()
      .filter((camera) => camera.lat != null && camera.lon != null)
      .map((camera) => ({ camera, metres: distance(lat, lon, camera.lat, camera.lon) }))
      .sort((a, b) => a.metres - b.metres)
      .slice(0, count);
  }

  /** The room's indicators; a figure without a data source is null. */
  kpis(now = Date.now()) {
    const open = this.openCases();
    const byPriority = Object.fromEntries(PRIORITIES.map((p) => [p, 0]));
    for (const item of open) if (item.priority in byPriority) byPriority[item.priority] += 1;
    const units = this.available.units
      ? [...this.units.values()].filter((u) => u.status === "available" && u.on_duty !== false).length
      : null;
    const offline =
      this.available.devices || this.devices.size
        ? [...this.devices.values()].filter((d) => d.state === "offline").length
        : null;
    return {
      open: this.available.cases || this.cases.size ? open.length : null,
      byPriority,
      breaches: this.available.cases || this.cases.size ? open.filter((c) => this.breached(c, now)).length : null,
      unitsAvailable: units,
      devicesOffline: offline,
      alarms: this.available.alarms || this.alarms.size ? this.alarms.size : null,
      alarmsEscalated: [...this.alarms.values()].filter((a) => a.escalated_at).length,
    };
  }
}
