// The notifications strip: what a person must notice now — urgent new cases, SLA breaches,
// devices going offline, alarms — newest first, bounded.

import { t } from "./i18n.js";
import { formatTime } from "./time.js";
import { el, priorityShape } from "./ui.js";

const MAX = 30;

export class Notifications {
  /** @param {() => string | undefined} role  the signed-in person's role */
  constructor(list, role = () => undefined) {
    this.list = list;
    this.role = role;
  }

  /** Look at one live event (after the store applied it) and announce what matters. */
  consider(message) {
    const { topic, payload } = message;
    if (topic === "case.opened") {
      const tone = payload.priority === "critical" || payload.priority === "high" ? "bad" : "info";
      this.add(message.time, tone, priorityShape(payload.priority), t("notify.case", { number: payload.number, priority: t(`priority.${payload.priority}`), title: payload.title }));
    } else if (topic === "case.sla_breached") {
      this.add(message.time, "bad", "⚠", t("notify.breach", { number: payload.number, title: payload.title }));
    } else if (topic === "device.health" && payload.state !== payload.previous && payload.state !== "online") {
      this.add(message.time, payload.state === "offline" ? "bad" : "warn", payload.state === "offline" ? "✕" : "◐", t("notify.device", { name: payload.name ?? payload.device_id, state: t(`device.${payload.state}`) }));
    } else if (topic === "device.alarm" && payload.action === "escalated") {
      // Escalations are for the supervisor: loud for them, a plain line for everyone else.
      const item = this.add(message.time, "bad", "⬆", t("notify.escalated", { message: payload.message }));
      item.dataset.escalated = String(payload.id);
      if (this.role() === "supervisor") {
        item.classList.add("urgent");
        item.setAttribute("role", "alert");
      }
    } else if (topic === "hub.alarm.raised" || topic === "device.alarm") {
      if (topic === "device.alarm" && payload.action !== "raised") return;
      this.add(message.time, payload.severity === "critical" ? "bad" : "warn", "!", t("notify.alarm", { message: payload.message }));
    }
  }

  add(time, tone, shape, text) {
    const item = el(
      "li",
      { dataset: { tone } },
      el("time", { dateTime: time }, formatTime(time)),
      el("span", { className: "shape", "aria-hidden": "true" }, shape),
      el("span", {}, text),
    );
    this.list.prepend(item);
    while (this.list.childElementCount > MAX) this.list.lastElementChild.remove();
    return item;
  }

  clear() {
    this.list.replaceChildren();
  }
}
