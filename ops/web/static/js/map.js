// The operations map (Leaflet 1.9.4, vendored): an offline outline of Indonesia always, the
// room's province file and online tiles when configured, and live layers from the store.
// Markers show state by shape and text as well as colour.

import * as L from "../vendor/leaflet/leaflet-src.esm.js";
import { t } from "./i18n.js";
import { ago } from "./time.js";
import { isStale } from "./store.js";
import { deviceShape, priorityShape } from "./ui.js";

export const LAYERS = ["cases", "units", "alerts", "centers", "cameras", "devices"];
const outlines = new Map(); // url -> Promise<GeoJSON|null>, shared by every map of the page

function loadGeoJSON(url) {
  if (!outlines.has(url)) {
    outlines.set(
      url,
      fetch(url, { credentials: "same-origin" })
        .then((response) => (response.ok ? response.json() : null))
        .catch(() => null),
    );
  }
  return outlines.get(url);
}

function escape(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function icon(kind, shape, label, extra = "") {
  return L.divIcon({
    className: `pin pin-${kind} ${extra}`,
    html: `<span class="pin-shape" aria-hidden="true">${escape(shape)}</span><span class="pin-label">${escape(label)}</span>`,
    iconSize: null,
    iconAnchor: [8, 8],
  });
}

export class OpsMap {
  /**
   * @param {HTMLElement} element
   * @param {import("./store.js").Store} store
   * @param {object} settings  /api/v1/console/settings
   * @param {object} options  layers (names), interactive, view {lat, lon, zoom}, onSelect(kind, item)
   */
  constructor(element, store, settings, options = {}) {
    this.store = store;
    this.layersShown = new Set(options.layers ?? LAYERS);
    this.onSelect = options.onSelect ?? (() => {});
    const interactive = options.interactive ?? true;
    const view = options.view ?? {
      lat: settings.map.center[0],
      lon: settings.map.center[1],
      zoom: settings.map.zoom,
    };
    this.map = L.map(element, {
      zoomControl: interactive,
      dragging: interactive,
      scrollWheelZoom: interactive,
      doubleClickZoom: interactive,
      boxZoom: interactive,
      keyboard: interactive,
      attributionControl: true,
      zoomSnap: 0.5,
    }).setView([view.lat, view.lon], view.zoom);
    this.map.attributionControl.setPrefix("Leaflet");
    if (settings.map.tile_url) {
      L.tileLayer(settings.map.tile_url, {
        attribution: escape(settings.map.tile_attribution),
        maxZoom: 18,
      }).addTo(this.map);
    }
    this.outlines = {};
    this.addOutline(settings.map.outline, "outline", t("map.outline"));
    if (settings.map.provinces) this.addOutline(settings.map.provinces, "provinces", t("map.provinces"));
    this.groups = Object.fromEntries(LAYERS.map((name) => [name, L.layerGroup()]));
    for (const name of LAYERS) if (this.layersShown.has(name)) this.groups[name].addTo(this.map);
    if (interactive) {
      const overlays = Object.fromEntries(LAYERS.map((name) => [t(`map.${name}`), this.groups[name]]));
      L.control.layers(null, overlays, { collapsed: true }).addTo(this.map);
    }
    this.markers = new Map(); // "kind:id" -> marker
    this.render();
  }

  async addOutline(url, className, attribution) {
    const data = await loadGeoJSON(url);
    if (!data || !this.map) return;
    const layer = L.geoJSON(data, {
      interactive: false,
      style: { className: `map-${className}`, weight: 1, fill: true },
      attribution,
    }).addTo(this.map);
    this.outlines[className] = layer;
    // Whichever arrives last, the filled country outline stays beneath the province lines.
    this.outlines.provinces?.bringToBack();
    this.outlines.outline?.bringToBack();
  }

  view() {
    const center = this.map.getCenter();
    return { lat: Number(center.lat.toFixed(5)), lon: Number(center.lng.toFixed(5)), zoom: Math.round(this.map.getZoom()) };
  }

  invalidate() {
    this.map.invalidateSize();
  }

  focus(lat, lon, zoom = 13) {
    this.map.setView([lat, lon], Math.max(zoom, this.map.getZoom()));
  }

  destroy() {
    this.map.remove();
    this.map = null;
  }

  /** Redraw every layer from the store (cheap: markers are reused by id). */
  render() {
    if (!this.map) return;
    const seen = new Set();
    // A live update moves or redraws only the markers it changed: rebuilding every marker's
    // element on each position report would starve the page (and the operator's typing).
    const place = (kind, id, lat, lon, look, title, item) => {
      if (lat == null || lon == null) return;
      const key = `${kind}:${id}`;
      seen.add(key);
      let marker = this.markers.get(key);
      if (!marker) {
        marker = L.marker([lat, lon], { keyboard: false, title });
        marker.on("click", () => this.onSelect(kind, marker.item));
        this.markers.set(key, marker);
        marker.addTo(this.groups[kind === "case" ? "cases" : kind]);
      } else {
        const at = marker.getLatLng();
        if (at.lat !== lat || at.lng !== lon) marker.setLatLng([lat, lon]);
      }
      marker.item = item;
      const lookKey = look.join("\u0000");
      if (marker.lookKey !== lookKey) {
        marker.lookKey = lookKey;
        marker.setIcon(icon(...look));
      }
      if (marker.options.title !== title) {
        marker.options.title = title;
        marker.getElement()?.setAttribute("title", title);
      }
    };
    const store = this.store;
    for (const item of store.openCases()) {
      const breached = store.breached(item);
      place(
        "case",
        item.id,
        item.lat,
        item.lon,
        ["case", priorityShape(item.priority), item.number, `priority-${item.priority}${breached ? " breached" : ""}`],
        `${item.number} ${item.title}`,
        item,
      );
    }
    const now = Date.now();
    for (const unit of store.units.values()) {
      const stale = isStale(unit, now);
      const label = `${unit.callsign ?? unit.name ?? unit.id} · ${t(`unit.${unit.status}`)}${stale ? ` · ${t("stale")}` : ""}`;
      place(
        "units",
        unit.id,
        unit.lat,
        unit.lon,
        ["unit", unit.status === "available" ? "▶" : "▷", label, `unit-${unit.status}${stale ? " stale" : ""}`],
        `${label}${unit.position_at ? ` (${ago(unit.position_at)})` : ""}`,
        unit,
      );
    }
    for (const device of store.devices.values()) {
      const kind = device.kind === "camera" ? "cameras" : "devices";
      place(
        kind,
        device.id,
        device.lat,
        device.lon,
        [kind === "cameras" ? "camera" : "device", deviceShape(device.state), `${device.kind === "camera" ? "CAM " : ""}${device.name ?? device.id}`, `state-${device.state ?? "unknown"}`],
        `${device.name ?? device.id}: ${t(`device.${device.state ?? "unknown"}`)}`,
        device,
      );
    }
    for (const center of store.centers.values()) {
      place("centers", center.id, center.lat, center.lon, ["center", "⌂", center.name ?? center.id], center.name ?? center.id, center);
    }
    for (const [key, marker] of this.markers) {
      if (!seen.has(key)) {
        marker.remove();
        this.markers.delete(key);
      }
    }
    this.renderAlerts();
  }

  renderAlerts() {
    // Areas are redrawn only when the alerts changed: a polygon is costly to build again.
    if (this.alertsDrawn === this.store.alertsVersion) return;
    this.alertsDrawn = this.store.alertsVersion;
    const group = this.groups.alerts;
    group.clearLayers();
    for (const alert of this.store.alerts.values()) {
      const area = alert.area ?? alert.geometry ?? null;
      const label = alert.headline ?? alert.title ?? alert.event ?? String(alert.id);
      if (area?.type === "circle" || (alert.radius_m && alert.lat != null)) {
        const lat = area?.lat ?? alert.lat;
        const lon = area?.lon ?? alert.lon;
        const radius = area?.radius_m ?? alert.radius_m;
        L.circle([lat, lon], { radius, className: "map-alert" }).bindTooltip(`⚠ ${label}`).addTo(group);
      } else if (area && area.type && area.coordinates) {
        L.geoJSON(area, { style: { className: "map-alert" } }).bindTooltip(`⚠ ${label}`).addTo(group);
      } else if (alert.lat != null && alert.lon != null) {
        L.marker([alert.lat, alert.lon], { icon: icon("alert", "⚠", label) }).addTo(group);
      }
    }
  }
}
