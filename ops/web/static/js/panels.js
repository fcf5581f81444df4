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
    figure(
      "kpi.alarms",
      k.alarms,
      k.alarmsEscalated ? el("span", { className: "kpi-note" }, el("span", { "aria-hidden": "true" }, "⬆ "), `${k.alarmsEscalated} · ${t("alarms.escalated")}`) : null,
      k.alarms ? "bad" : null,
    ),
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

/**
 * Device health, worst first. With options.onSelect each row is a button picking that device
 * (options.selected marks the chosen one).
 */
export function deviceList(store, limit = 50, options = {}) {
  if (!store.available.devices && !store.devices.size) return el("p", { className: "muted" }, t("devices.unavailable"));
  const devices = [...store.devices.values()].sort(
    (a, b) => (STATE_ORDER[a.state] ?? 2) - (STATE_ORDER[b.state] ?? 2) || String(a.id).localeCompare(String(b.id)),
  );
  if (!devices.length) return el("p", { className: "muted" }, t("devices.empty"));
  // Worst first; past the limit, the technician page has every device with its filters.
  const more =
    devices.length > limit
      ? el("p", { className: "muted devices-more" }, el("a", { href: "/devices" }, t("devices.more", { shown: limit, total: devices.length })))
      : null;
  const list = el(
    "ul",
    { className: "rows" },
    devices.slice(0, limit).map((device) => {
      const content = [deviceBadge(device.state), " ", el("strong", {}, device.name ?? device.id), el("span", { className: "muted" }, ` · ${device.kind}`)];
      if (!options.onSelect) return el("li", { dataset: { state: device.state ?? "unknown" } }, content);
      const button = el(
        "button",
        { type: "button", className: "device-row", dataset: { device: String(device.id) }, "aria-current": String(String(device.id) === options.selected) },
        content,
      );
      button.addEventListener("click", () => options.onSelect(String(device.id)));
      return el("li", { dataset: { state: device.state ?? "unknown" } }, button);
    }),
  );
  return more ? el("div", {}, list, more) : list;
}

/**
 * Active device alarms, escalated first. options.canAck shows an Acknowledge button on the ones
 * nobody acknowledged yet; options.onAck(alarm) is called by it. options.deviceId filters.
 */
export function alarmList(store, options = {}) {
  if (!store.available.alarms && !store.alarms.size) return el("p", { className: "muted" }, t("alarms.unavailable"));
  const alarms = store.openAlarms().filter((alarm) => options.deviceId == null || String(alarm.device_id) === options.deviceId);
  if (!alarms.length) return el("p", { className: "muted" }, t(options.deviceId == null ? "alarms.empty" : "device.no_alarms"));
  return el(
    "ul",
    { className: "rows alarms" },
    alarms.slice(0, options.limit ?? 30).map((alarm) => {
      const escalated = Boolean(alarm.escalated_at);
      const device = store.devices.get(String(alarm.device_id));
      let ack = null;
      if (alarm.acknowledged_by) ack = el("span", { className: "muted" }, ` · ✓ ${t("alarms.acked", { name: alarm.acknowledged_by })}`);
      else if (options.canAck) {
        ack = el("button", { type: "button", className: "alarm-ack", dataset: { alarm: String(alarm.id) } }, t("alarms.ack"));
        ack.addEventListener("click", () => options.onAck?.(alarm));
      }
      return el(
        "li",
        { dataset: { alarm: String(alarm.id), severity: alarm.severity ?? "", escalated: String(escalated) } },
        el("span", { "aria-hidden": "true" }, alarm.severity === "critical" ? "✕ " : "! "),
        el("strong", {}, device?.name ?? alarm.device_id),
        ` · ${alarm.message ?? alarm.code}`,
        alarm.times > 1 ? el("span", { className: "muted" }, ` · ${t("alarms.times", { count: alarm.times })}`) : null,
        escalated ? el("span", { className: "escalated" }, el("span", { "aria-hidden": "true" }, " ⬆ "), t("alarms.escalated")) : null,
        ack,
      );
    }),
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
