// The case queue: open cases, most urgent first, filtered by what the operator types.

import { t } from "./i18n.js";
import { ago, formatTime } from "./time.js";
import { el, priorityBadge } from "./ui.js";

export class Queue {
  constructor(list, empty, filter, store, onSelect) {
    this.list = list;
    this.empty = empty;
    this.filter = filter;
    this.store = store;
    this.onSelect = onSelect;
    this.selected = null;
    this.notice = el("p", { id: "queue-capped", className: "notice", role: "status", hidden: true });
    empty.after(this.notice);
    filter.addEventListener("input", () => this.render());
    list.addEventListener("click", (event) => {
      const item = event.target.closest("[data-case]");
      if (item) this.onSelect(item.dataset.case);
    });
  }

  visible() {
    const words = this.filter.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    return this.store.openCases().filter((item) => {
      if (!words.length) return true;
      const text = `${item.number} ${item.title} ${item.category} ${item.region ?? ""} ${item.channel}`.toLowerCase();
      return words.every((word) => text.includes(word));
    });
  }

  /** Move the selection by one (J/K). */
  step(delta) {
    const items = this.visible();
    if (!items.length) return;
    const index = items.findIndex((item) => String(item.id) === this.selected);
    const next = items[Math.max(0, Math.min(items.length - 1, index < 0 ? 0 : index + delta))];
    this.onSelect(String(next.id));
  }

  select(id) {
    this.selected = id;
    for (const node of this.list.querySelectorAll("[data-case]")) {
      const chosen = node.dataset.case === id;
      node.setAttribute("aria-current", String(chosen));
      if (chosen) node.scrollIntoView({ block: "nearest" });
    }
  }

  /** A parent's linked duplicates, or what this case duplicates (linked or suspected). */
  duplicates(item) {
    const numberOf = (id) => this.store.cases.get(String(id))?.number ?? `#${id}`;
    const children = this.store.childrenOf(item.id);
    const count = Math.max(Number(item.children) || 0, children.length);
    if (count > 0) {
      const numbers = children.map((child) => child.number).join(", ") || "—";
      return el("span", { className: "duplicates", dataset: { children: String(count) } }, el("span", { "aria-hidden": "true" }, "⧉ "), t("queue.children", { count, numbers }));
    }
    if (item.parent_id != null) {
      return el("span", { className: "duplicates", dataset: { parent: String(item.parent_id) } }, el("span", { "aria-hidden": "true" }, "⧉ "), t("queue.linked", { number: numberOf(item.parent_id) }));
    }
    if (item.duplicate_of != null) {
      return el("span", { className: "suspected", dataset: { suspected: String(item.duplicate_of) } }, el("span", { "aria-hidden": "true" }, "≈ "), t("queue.suspected", { number: numberOf(item.duplicate_of) }));
    }
    return null;
  }

  render() {
    this.notice.hidden = !this.store.casesCapped;
    this.notice.textContent = this.store.casesCapped ? t("queue.capped", { count: this.store.cases.size }) : "";
    const items = this.visible();
    this.list.replaceChildren(
      ...items.map((item) => {
        const breached = this.store.breached(item);
        return el(
          "li",
          {},
          el(
            "button",
            {
              type: "button",
              className: "queue-item",
              dataset: { case: String(item.id), priority: item.priority },
              "aria-current": String(String(item.id) === this.selected),
            },
            el("span", { className: "queue-head" }, priorityBadge(item.priority), el("span", { className: "number" }, item.number)),
            el("span", { className: "queue-title" }, item.title),
            el(
              "span",
              { className: "queue-meta muted" },
              `${item.category} · ${t(`status.${item.status}`)} · `,
              el("time", { dateTime: item.created_at, title: formatTime(item.created_at) }, ago(item.created_at)),
            ),
            breached ? el("span", { className: "sla-breached" }, el("span", { "aria-hidden": "true" }, "⚠ "), t("case.breached")) : null,
            this.duplicates(item),
          ),
        );
      }),
    );
    const available = this.store.available.cases;
    this.empty.hidden = items.length > 0;
    this.empty.textContent = available === false && !this.store.cases.size ? t("queue.unavailable") : t("queue.empty");
  }
}
