// The console's device panel: device health, worst first, and the device picked in that list or
// on the map — its state (shape and word), reason, figures and active alarms, with a link to the
// technician page. Mounted into [data-panel="devices"] (see docs/console.md).

import { alarmList, deviceList } from "./panels.js";
import { deviceBadge, el, throttled } from "./ui.js";

export function mount(region, ctx) {
  const { t } = ctx.i18n;
  const list = el("div", { className: "device-list" });
  const detail = el("section", { id: "device-detail", className: "device-detail", "aria-labelledby": "device-detail-title" });
  region.replaceChildren(list, detail);

  function figures(device) {
    const entries = Object.entries(device.figures ?? {}).filter(([, value]) => value !== null && typeof value !== "object");
    if (!entries.length) return el("p", { className: "muted" }, "—");
    return el(
      "dl",
      { className: "facts figures" },
      entries.slice(0, 24).map(([name, value]) => el("div", { dataset: { figure: name } }, el("dt", {}, name), el("dd", {}, String(value)))),
    );
  }

  function renderDetail() {
    const id = ctx.selection.device();
    const device = id === null ? null : ctx.store.devices.get(id);
    if (!device) {
      detail.replaceChildren(el("h3", { id: "device-detail-title" }, t("device.title")), el("p", { className: "muted" }, t("device.none")));
      return;
    }
    const rows = [
      ["device.kind", device.kind ?? "—"],
      ["device.site", device.site ?? "—"],
      ["device.reason", device.reason || "—"],
      ["device.last_seen", device.last_seen ? ctx.time.formatDateTime(device.last_seen) : "—"],
    ];
    detail.replaceChildren(
      el("h3", { id: "device-detail-title" }, t("device.title")),
      el("p", { className: "device-head", dataset: { device: String(device.id), state: device.state ?? "unknown" } }, deviceBadge(device.state), " ", el("strong", {}, device.name ?? device.id)),
      el("dl", { className: "facts" }, rows.map(([key, value]) => el("div", { dataset: { fact: key } }, el("dt", {}, t(key)), el("dd", {}, value)))),
      el("h4", {}, t("device.figures")),
      figures(device),
      el("h4", {}, t("device.alarms")),
      alarmList(ctx.store, { deviceId: String(device.id), limit: 10 }),
      el("p", {}, el("a", { className: "device-link", href: `/devices#${encodeURIComponent(device.id)}`, target: "_blank", rel: "noopener" }, t("device.open_page"))),
    );
  }

  const render = throttled(() => {
    const selected = ctx.selection.device();
    const focused = document.activeElement?.closest?.(".device-row")?.dataset.device;
    list.replaceChildren(deviceList(ctx.store, 50, { onSelect: (id) => ctx.selection.selectDevice(id), selected }));
    if (focused) list.querySelector(`.device-row[data-device="${CSS.escape(focused)}"]`)?.focus();
    renderDetail();
  });

  ctx.store.addEventListener("change", render);
  ctx.selection.onDevice(() => {
    render();
    detail.scrollIntoView?.({ block: "nearest" });
  });
  ctx.i18n.onLangChange(render);
  render();
  return { refresh: render };
}
