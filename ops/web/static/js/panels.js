// The console's read-only panels: the selected-case summary (when no case module is mounted),
// indicators, units, device health and alerts. Each renders from the store.

import { t } from "./i18n.js";
import { ago, formatDateTime } from "./time.js";
import { deviceBadge, el, priorityBadge } from "./ui.js";

/** A summary of one case: what the wall's case tile shows too. */
export function caseSummary(item, store) {
  if (!item) return el("p", { className: "muted" }, t("case.none"));
  const rows = [
    ["case.status", t(`status.${item.status}`)],
    ["case.category", item.category],
    ["case.channel", item.channel],
    ["case.agency", item.agency ?? "—"],
    ["case.created", formatDateTime(item.created_at)],
    ["case.sla", item.sla_due_at ? formatDateTime(item.sla_due_at) : "—"],
    ["case.location", item.lat != null ? `${Number(item.lat).toFixed(4)}, ${Number(item.lon).toFixed(4)}${item.region ? ` · ${item.region}` : ""}` : item.region ?? "—"],
  ];
  return el(
    "article",
    { className: "case-summary", dataset: { case: String(item.id) } },
    el("p", { className: "case-head" }, priorityBadge(item.priority), el("strong", { className: "number" }, item.number)),
    el("p", { className: "case-title" }, item.title),
    store.breached(item) ? el("p", { className: "sla-breached" }, el("span", { "aria-hidden": "true" }, "⚠ "), t("case.breached")) : null,
    el("dl", { className: "facts" }, rows.map(([key, value]) => el("div", {}, el("dt", {}, t(key)), el("dd", {}, value)))),
  );
}

/** The indicators: open cases by priority, SLA breaches, units available, devices offline. */
export function kpiBlock(store) {
  const k = store.kpis();
  const figure = (label, value, extra = null, tone = null) =>
    el(
      "div",
      { className: "kpi", dataset: { tone: tone ?? "" } },
      el("span", { className: "kpi-value" }, value === null ? "—" : String(value)),
      el("span", { className: "kpi-label" }, t(label)),
      value === null ? el("span", { className: "kpi-note muted" }, t("kpi.nodata")) : extra,
    );
  const byPriority = el(
    "span",
    { className: "kpi-split" },
    Object.entries(k.byPriority).map(([priority, count]) => el("span", {}, priorityBadge(priority), ` ${count}`)),
  );
  return [
    figure("kpi.open", k.open, byPriority),
    figure("kpi.breaches", k.breaches, null, k.breaches ? "bad" : null),
    figure("kpi.units", k.unitsAvailable),
    figure("kpi.offline", k.devicesOffline, null, k.devicesOffline ? "bad" : null),
  ];
}

export function unitList(store, limit = 50) {
  if (!store.available.units && !store.units.size) return el("p", { className: "muted" }, t("units.unavailable"));
  const units = [...store.units.values()].sort((a, b) => String(a.status).localeCompare(String(b.status)));
  if (!units.length) return el("p", { className: "muted" }, t("units.empty"));
  return el(
    "ul",
    { className: "rows" },
    units.slice(0, limit).map((unit) =>
      el(
        "li",
        { dataset: { unit: unit.id, status: unit.status, duty: unit.on_duty === false ? "off" : "on" } },
        el("strong", {}, unit.callsign ?? unit.name ?? unit.id),
        ` ${t(`unit.${unit.status}`)}`,
        unit.on_duty === false ? el("span", { className: "off-duty" }, ` · ${t("units.off_duty")}`) : null,
        unit.position_at ? el("span", { className: "muted" }, ` · ${t("units.fresh", { age: ago(unit.position_at) })}`) : null,
      ),
    ),
  );
}

const STATE_ORDER = { offline: 0, degraded: 1, unknown: 2, online: 3 };

export function deviceList(store, limit = 50) {
  if (!store.available.devices && !store.devices.size) return el("p", { className: "muted" }, t("devices.unavailable"));
  const devices = [...store.devices.values()].sort(
    (a, b) => (STATE_ORDER[a.state] ?? 2) - (STATE_ORDER[b.state] ?? 2) || String(a.id).localeCompare(String(b.id)),
  );
  if (!devices.length) return el("p", { className: "muted" }, t("devices.empty"));
  return el(
    "ul",
    { className: "rows" },
    devices.slice(0, limit).map((device) =>
      el("li", { dataset: { state: device.state ?? "unknown" } }, deviceBadge(device.state), " ", el("strong", {}, device.name ?? device.id), el("span", { className: "muted" }, ` · ${device.kind}`)),
    ),
  );
}

export function alertList(store, limit = 20) {
  if (!store.available.alerts && !store.alerts.size) return el("p", { className: "muted" }, t("alerts.unavailable"));
  const alerts = [...store.alerts.values()];
  if (!alerts.length) return el("p", { className: "muted" }, t("alerts.empty"));
  return el(
    "ul",
    { className: "rows" },
    alerts.slice(0, limit).map((alert) =>
      el("li", {}, el("span", { "aria-hidden": "true" }, "⚠ "), el("strong", {}, alert.headline ?? alert.title ?? alert.event ?? alert.id), alert.severity ? ` · ${alert.severity}` : ""),
    ),
  );
}
