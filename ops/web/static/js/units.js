// The units and dispatch panel: the unit list with status and freshness, recommend and dispatch
// for the selected case, and each open order's delivery ladder live (which channel, which state,
// when), with acknowledge and cancel. Mounted by the console shell into [data-panel="units"].

import { isStale } from "./store.js";
import { el, keepingFocus, throttled } from "./ui.js";

const STATUSES = ["available", "dispatched", "en_route", "on_scene", "returning", "out_of_service"];
const STATUS_SHAPES = {
  available: "●",
  dispatched: "▶",
  en_route: "➤",
  on_scene: "◆",
  returning: "◀",
  out_of_service: "✕",
};
const STEP_SHAPES = {
  queued: "○",
  sent: "◔",
  delivered: "◑",
  acknowledged: "●",
  timed_out: "✕",
  cancelled: "–",
};
const UNIT_LIMIT = 60;

const STRINGS = {
  id: {
    "dispatch.recommend": "Rekomendasi unit",
    "dispatch.pick_case": "Pilih kasus di antrean untuk merekomendasikan unit.",
    "dispatch.none": "Tidak ada unit siaga yang cocok.",
    "dispatch.message": "Pesan perintah",
    "dispatch.auto": "Eskalasi otomatis ke unit berikutnya",
    "dispatch.send": "Berangkatkan",
    "dispatch.sent": "Perintah {id} dikirim.",
    "dispatch.orders": "Perintah terbuka",
    "dispatch.no_orders": "Tidak ada perintah terbuka.",
    "dispatch.ack": "Catat konfirmasi",
    "dispatch.cancel": "Batalkan",
    "dispatch.cancel_reason": "Alasan pembatalan?",
    "dispatch.stale": "posisi basi",
    "dispatch.no_position": "tanpa posisi",
    "dispatch.km": "{km} km",
    "dispatch.filter": "Saring status unit",
    "dispatch.search": "Cari unit (id, callsign, nama)",
    "dispatch.more": "{shown} dari {total} unit; persempit dengan pencarian.",
    "dispatch.all": "semua",
    "dispatch.set_status": "Ubah status {unit}",
    "dispatch.override": "Kirim walau tidak siaga (supervisor)",
    "dispatch.override_reason": "Alasan",
    "dispatch.positions": "Posisi: {accepted} diterima, {dropped} ditolak",
    "dispatch.shift": "sif {shift}",
    "dispatch.shift_now": "Sif sekarang: {shift} ({span})",
    "dispatch.off_duty": "lepas dinas",
    "dispatch.radio": "radio",
    "dispatch.radio_thread": "Dijangkau lewat radio — buka percakapan radionya",
    "step.queued": "antre",
    "step.sent": "terkirim",
    "step.delivered": "diterima",
    "step.acknowledged": "dikonfirmasi",
    "step.timed_out": "habis waktu",
    "step.cancelled": "dibatalkan",
    "order.open": "terbuka",
    "order.acknowledged": "dikonfirmasi",
    "order.failed": "gagal",
    "order.cancelled": "dibatalkan",
    "assignment.pending": "menunggu konfirmasi",
    "assignment.acknowledged": "dikonfirmasi",
    "assignment.exhausted": "tidak menjawab",
    "assignment.cancelled": "dibatalkan",
  },
  en: {
    "dispatch.recommend": "Recommend units",
    "dispatch.pick_case": "Select a case in the queue to recommend units.",
    "dispatch.none": "No available unit fits.",
    "dispatch.message": "Order message",
    "dispatch.auto": "Escalate to the next unit automatically",
    "dispatch.send": "Dispatch",
    "dispatch.sent": "Order {id} sent.",
    "dispatch.orders": "Open orders",
    "dispatch.no_orders": "No open orders.",
    "dispatch.ack": "Record acknowledgement",
    "dispatch.cancel": "Cancel",
    "dispatch.cancel_reason": "Why cancel?",
    "dispatch.stale": "stale position",
    "dispatch.no_position": "no position",
    "dispatch.km": "{km} km",
    "dispatch.filter": "Filter unit status",
    "dispatch.search": "Find a unit (id, callsign, name)",
    "dispatch.more": "{shown} of {total} units; narrow with the search.",
    "dispatch.all": "all",
    "dispatch.set_status": "Set status of {unit}",
    "dispatch.override": "Send even if unavailable (supervisor)",
    "dispatch.override_reason": "Reason",
    "dispatch.positions": "Positions: {accepted} accepted, {dropped} dropped",
    "dispatch.shift": "shift {shift}",
    "dispatch.shift_now": "Shift on now: {shift} ({span})",
    "dispatch.off_duty": "off duty",
    "dispatch.radio": "radio",
    "dispatch.radio_thread": "Reached by radio — open its radio thread",
    "step.queued": "queued",
    "step.sent": "sent",
    "step.delivered": "delivered",
    "step.acknowledged": "acknowledged",
    "step.timed_out": "timed out",
    "step.cancelled": "cancelled",
    "order.open": "open",
    "order.acknowledged": "acknowledged",
    "order.failed": "failed",
    "order.cancelled": "cancelled",
    "assignment.pending": "awaiting acknowledgement",
    "assignment.acknowledged": "acknowledged",
    "assignment.exhausted": "did not answer",
    "assignment.cancelled": "cancelled",
  },
};

/** Mount the panel; returns { refresh } for the shell. */
export function mount(region, context) {
  for (const sheet of ["/static/css/units.css", "/static/css/radio.css"]) {
    if (!document.querySelector(`link[href="${sheet}"]`)) document.head.append(el("link", { rel: "stylesheet", href: sheet }));
  }
  const panel = new UnitsPanel(region, context);
  panel.start();
  return { refresh: () => panel.refresh() };
}

class UnitsPanel {
  constructor(region, context) {
    this.region = region;
    this.ctx = context;
    this.t = context.i18n.t;
    this.filter = "";
    this.search = "";
    this.controls = null;
    this.searchBox = null;
    this.labelled = null;
    this.recommended = 0; // bumped with every new recommendation, so the form is rebuilt for it
    this.dispatchKey = null;
    this.listHeld = false;
    this.orders = new Map();
    // Orders changed here while the open orders are on their way, so the list cannot undo them.
    this.refreshing = 0;
    this.refreshes = 0; // refreshes answered, shown on the panel for whoever waits on one
    this.changedOrders = new Set();
    this.recommendation = null;
    this.stats = null;
    this.notice = null;
    this.render = throttled(() => this.draw());
    for (const [code, strings] of Object.entries(STRINGS)) context.i18n.addStrings(code, strings);
  }

  get canDispatch() {
    const role = this.ctx.user?.role;
    return role === "operator" || role === "supervisor";
  }

  start() {
    this.ctx.store.addEventListener("change", (event) => {
      const topic = event.detail?.topic ?? "";
      if (topic === "load" || topic === "clock" || topic.startsWith("unit.")) this.render();
    });
    this.ctx.live.subscribe("dispatch.order.changed", (message) => this.reloadOrder(message.payload.order_id));
    this.ctx.selection.onCase(() => {
      this.recommendation = null;
      this.recommended += 1;
      this.render();
    });
    this.ctx.i18n.onLangChange(() => this.render());
    this.refresh();
  }

  async refresh() {
    this.refreshing += 1;
    try {
      const [body, stats, shift] = await Promise.all([
        this.ctx.api.api("GET", "/api/v1/dispatches?open=true&limit=50"),
        this.ctx.api.api("GET", "/api/v1/positions/stats"),
        this.ctx.api.api("GET", "/api/v1/shifts/current"),
      ]);
      const orders = new Map(body.orders.map((order) => [order.id, order]));
      for (const id of this.changedOrders) {
        if (this.orders.has(id)) orders.set(id, this.orders.get(id));
        else orders.delete(id);
      }
      this.orders = orders;
      this.stats = stats;
      this.shift = shift;
    } catch (error) {
      this.notice = { error: true, text: error.message };
    } finally {
      this.refreshing -= 1;
      this.refreshes += 1;
      if (!this.refreshing) this.changedOrders.clear();
    }
    this.render();
  }

  /** An order as an answer or a fetch gave it now; null: it is gone. */
  keepOrder(id, order) {
    if (order) this.orders.set(id, order);
    else this.orders.delete(id);
    if (this.refreshing) this.changedOrders.add(id);
  }

  async reloadOrder(orderId) {
    try {
      const order = await this.ctx.api.api("GET", `/api/v1/dispatches/${encodeURIComponent(orderId)}`);
      this.keepOrder(order.id, order);
    } catch (error) {
      if (error.status === 404) this.keepOrder(orderId, null);
    }
    this.render();
  }

  // -- drawing ------------------------------------------------------------------------------

  draw() {
    // The filters are built once and never re-parented: detaching a focused field would drop
    // the operator's focus and the keystrokes that follow whenever a live update redraws.
    if (!this.controls) {
      this.controls = el("div", { className: "unit-controls" }, ...this.filterControls());
      this.listBox = el("div", { className: "unit-list-box" });
      this.statsBox = el("div");
      this.dispatchBox = el("div");
      this.ordersHead = el("h3");
      this.ordersBox = el("div");
      // A status dropdown open in the list holds the list still; it catches up on leaving.
      this.listBox.addEventListener("focusout", () => {
        if (this.listHeld) this.render();
      });
      this.region.replaceChildren(this.controls, this.listBox, this.statsBox, this.dispatchBox, this.ordersHead, this.ordersBox);
    }
    this.labelControls();
    this.listHeld = this.listBox.contains(document.activeElement);
    if (!this.listHeld) this.listBox.replaceChildren(...[this.unitList()].flat());
    this.statsBox.replaceChildren(this.shiftNow() ?? "", this.positionStats() ?? "");
    // The dispatch form (units ticked, the message being typed) is rebuilt only when what it
    // shows changes: another case, a new recommendation, a notice, the language.
    const key = JSON.stringify([this.ctx.selection.case(), this.recommended, this.notice, this.ctx.i18n.lang()]);
    if (key !== this.dispatchKey) {
      this.dispatchKey = key;
      keepingFocus(this.dispatchBox, () => this.dispatchBox.replaceChildren(this.dispatchBlock()));
    }
    this.ordersHead.textContent = this.t("dispatch.orders");
    keepingFocus(this.ordersBox, () => this.ordersBox.replaceChildren(this.orderList()));
    this.region.dataset.refreshes = String(this.refreshes);
  }

  filterControls() {
    this.searchBox = el("input", { id: "unit-search", type: "search", autocomplete: "off", maxLength: 64 });
    this.searchBox.addEventListener("input", () => {
      this.search = this.searchBox.value.trim().toLowerCase();
      this.render();
    });
    this.statusSelect = el("select", { id: "unit-filter" });
    this.statusSelect.addEventListener("change", () => {
      this.filter = this.statusSelect.value;
      this.render();
    });
    return [this.searchBox, this.statusSelect];
  }

  /** Labels and options in the current language; the fields themselves stay put. */
  labelControls() {
    const language = this.ctx.i18n.lang();
    if (this.labelled === language) return; // an open dropdown survives a live redraw
    this.labelled = language;
    this.searchBox.setAttribute("aria-label", this.t("dispatch.search"));
    this.searchBox.placeholder = this.t("dispatch.search");
    this.statusSelect.setAttribute("aria-label", this.t("dispatch.filter"));
    this.statusSelect.replaceChildren(
      el("option", { value: "" }, this.t("dispatch.all")),
      ...STATUSES.map((status) => el("option", { value: status, selected: status === this.filter }, this.t(`unit.${status}`))),
    );
  }

  unitList() {
    const store = this.ctx.store;
    if (!store.available.units && !store.units.size) return el("p", { className: "muted" }, this.t("units.unavailable"));
    const wanted = (unit) =>
      !this.search ||
      [unit.id, unit.callsign, unit.name].some((text) => String(text ?? "").toLowerCase().includes(this.search));
    const units = [...store.units.values()]
      .filter((unit) => (!this.filter || unit.status === this.filter) && wanted(unit))
      .sort((a, b) => STATUSES.indexOf(a.status) - STATUSES.indexOf(b.status) || String(a.id).localeCompare(String(b.id)));
    if (!units.length) return el("p", { className: "muted" }, this.t("units.empty"));
    return [
      el("ul", { className: "rows unit-list" }, units.slice(0, UNIT_LIMIT).map((unit) => this.unitRow(unit))),
      units.length > UNIT_LIMIT
        ? el("p", { className: "muted" }, this.t("dispatch.more", { shown: UNIT_LIMIT, total: units.length }))
        : "",
    ];
  }

  /** The shift on now ("Sif pagi 07:00–15:00"); asks the hub again once it has ended. */
  shiftNow() {
    const shift = this.shift;
    if (!shift) return null;
    if (Date.now() >= Date.parse(shift.ends_at) && !this.shiftLoading) {
      this.shiftLoading = true;
      this.ctx.api
        .api("GET", "/api/v1/shifts/current")
        .then((next) => {
          this.shift = next;
          this.render();
        }, () => {})
        .finally(() => {
          this.shiftLoading = false;
        });
    }
    const span = `${this.ctx.time.formatTime(shift.started_at)}–${this.ctx.time.formatTime(shift.ends_at)}`;
    return el("p", { className: "muted shift-now", dataset: { shift: shift.shift } }, this.t("dispatch.shift_now", { shift: shift.shift, span }));
  }

  positionStats() {
    if (!this.stats) return null;
    const sum = (counts) => Object.values(counts).reduce((total, n) => total + n, 0);
    const dropped = Object.values(this.stats.rejected).reduce((total, counts) => total + sum(counts), 0);
    const detail = Object.entries(this.stats.rejected)
      .map(([source, counts]) => `${source}: ${Object.entries(counts).map(([why, n]) => `${why} ${n}`).join(", ")}`)
      .join("; ");
    return el(
      "p",
      { className: "muted position-stats", title: detail },
      this.t("dispatch.positions", { accepted: sum(this.stats.accepted), dropped }),
    );
  }

  unitRow(unit) {
    const stale = isStale(unit);
    const row = el(
      "li",
      { dataset: { unit: unit.id, status: unit.status, stale: String(stale), duty: unit.on_duty === false ? "off" : "on" } },
      el("span", { className: "badge", "aria-hidden": "true" }, STATUS_SHAPES[unit.status] ?? "•"),
      " ",
      el("strong", {}, unit.callsign ?? unit.id),
      this.radioBadge(unit),
      ` ${this.t(`unit.${unit.status}`)}`,
      unit.shift ? el("span", { className: "muted unit-shift" }, ` · ${this.t("dispatch.shift", { shift: unit.shift })}`) : null,
      unit.on_duty === false ? el("span", { className: "off-duty" }, ` · ${this.t("dispatch.off_duty")}`) : null,
      unit.position_at
        ? el(
            "span",
            { className: stale ? "stale-note" : "muted" },
            ` · ${this.t("units.fresh", { age: this.ctx.time.ago(unit.position_at) })}${stale ? ` (${this.t("dispatch.stale")})` : ""}`,
          )
        : el("span", { className: "muted" }, ` · ${this.t("dispatch.no_position")}`),
    );
    if (unit.lat != null) {
      row.addEventListener("click", () => this.ctx.map.focus(unit.lat, unit.lon, 13));
    }
    if (this.canDispatch) {
      const select = el(
        "select",
        { className: "unit-status", "aria-label": this.t("dispatch.set_status", { unit: unit.callsign ?? unit.id }) },
        STATUSES.map((status) => el("option", { value: status, selected: status === unit.status }, this.t(`unit.${status}`))),
      );
      select.addEventListener("click", (event) => event.stopPropagation());
      select.addEventListener("change", () => this.setStatus(unit.id, select.value));
      row.append(" ", select);
    }
    return row;
  }

  /** "radio" on a unit reached by radio; it opens the unit's thread in the radio panel. */
  radioBadge(unit) {
    const channels = unit.channels ?? [];
    if (!channels.some((channel) => (channel?.channel ?? channel) === "radio")) return null;
    const badge = el(
      "button",
      { type: "button", className: "radio-badge", dataset: { radio: unit.id }, title: this.t("dispatch.radio_thread") },
      el("span", { "aria-hidden": "true" }, "⌁ "),
      this.t("dispatch.radio"),
    );
    badge.addEventListener("click", (event) => {
      event.stopPropagation();
      document.dispatchEvent(new CustomEvent("radio:thread", { detail: unit.id }));
    });
    return badge;
  }

  dispatchBlock() {
    const caseId = this.ctx.selection.case();
    if (!caseId) return el("p", { className: "muted" }, this.t("dispatch.pick_case"));
    const block = el("div", { className: "dispatch", dataset: { case: caseId } });
    const recommend = el("button", { type: "button", id: "recommend" }, this.t("dispatch.recommend"));
    recommend.addEventListener("click", () => this.recommend(caseId));
    block.append(recommend);
    if (this.notice) {
      block.append(el("p", { className: this.notice.error ? "error" : "note", role: this.notice.error ? "alert" : "status" }, this.notice.text));
    }
    const result = this.recommendation;
    if (!result || String(result.case.id) !== String(caseId)) return block;
    if (!result.units.length) {
      block.append(el("p", { className: "muted" }, this.t("dispatch.none")));
      return block;
    }
    const form = el("form", { className: "recommendation" });
    form.append(
      el(
        "ol",
        { className: "rows ranked" },
        result.units.map((item, index) =>
          el(
            "li",
            { dataset: { unit: item.unit.id, stale: String(item.stale) } },
            el(
              "label",
              {},
              el("input", { type: "checkbox", name: "unit", value: item.unit.id, checked: index === 0, disabled: !this.canDispatch }),
              ` ${item.rank}. `,
              el("strong", {}, item.unit.callsign ?? item.unit.id),
              item.distance_km != null ? ` · ${this.t("dispatch.km", { km: item.distance_km.toFixed(1) })}` : "",
              item.stale ? el("span", { className: "stale-note" }, ` · ${this.t("dispatch.stale")}`) : null,
            ),
            el("span", { className: "muted reasons" }, item.reasons.join("; ")),
          ),
        ),
      ),
    );
    if (this.canDispatch) {
      const message = el("textarea", { name: "message", required: true, maxLength: 1000, rows: 2, "aria-label": this.t("dispatch.message"), dataset: { draft: "" } });
      message.value = `${result.case.number}: `;
      const auto = el("input", { type: "checkbox", name: "auto", checked: true });
      form.append(
        el("label", {}, this.t("dispatch.message"), message),
        el("label", {}, auto, ` ${this.t("dispatch.auto")}`),
      );
      let override = null;
      let reason = null;
      if (this.ctx.user?.role === "supervisor") {
        override = el("input", { type: "checkbox", name: "override" });
        reason = el("input", { name: "override_reason", maxLength: 500, "aria-label": this.t("dispatch.override_reason") });
        form.append(el("label", {}, override, ` ${this.t("dispatch.override")}`), reason);
      }
      form.append(el("button", { type: "submit", id: "dispatch-send" }, this.t("dispatch.send")));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const units = [...form.querySelectorAll('input[name="unit"]:checked')].map((box) => box.value);
        const extra = override?.checked ? { override: true, override_reason: reason.value || null } : {};
        this.dispatch(caseId, units, message.value, auto.checked, extra);
      });
    }
    block.append(form);
    return block;
  }

  orderList() {
    const orders = [...this.orders.values()].sort((a, b) => b.created_at.localeCompare(a.created_at));
    if (!orders.length) return el("p", { className: "muted" }, this.t("dispatch.no_orders"));
    return el("ul", { className: "rows orders" }, orders.map((order) => this.orderRow(order)));
  }

  orderRow(order) {
    const item = el(
      "li",
      { className: "order", dataset: { order: order.id, status: order.status } },
      el("p", {}, el("strong", {}, order.case.number), ` · ${order.id} · ${this.t(`order.${order.status}`)}`),
      el("p", { className: "muted" }, order.message),
    );
    for (const assignment of order.assignments) {
      const ladder = el(
        "ol",
        { className: "ladder", dataset: { unit: assignment.unit } },
        assignment.ladder.map((step) =>
          el(
            "li",
            { dataset: { state: step.state, channel: step.channel } },
            el("span", { "aria-hidden": "true" }, STEP_SHAPES[step.state] ?? "•"),
            ` ${step.channel} ${this.t(`step.${step.state}`)}`,
            el("span", { className: "muted" }, ` · ${this.ctx.time.formatTime(step.acknowledged_at ?? step.delivered_at ?? step.sent_at ?? step.queued_at, true)}`),
          ),
        ),
      );
      const head = el("p", {}, el("strong", {}, assignment.unit), ` ${this.t(`assignment.${assignment.status}`)}`, assignment.escalated_from ? ` ← ${assignment.escalated_from}` : "");
      if (this.canDispatch && assignment.status === "pending" && order.status === "open") {
        const ack = el("button", { type: "button", className: "quiet" }, this.t("dispatch.ack"));
        ack.addEventListener("click", () => this.acknowledge(order.id, assignment.unit));
        head.append(" ", ack);
      }
      item.append(head, ladder);
    }
    if (this.canDispatch && order.status === "open") {
      const cancel = el("button", { type: "button", className: "quiet" }, this.t("dispatch.cancel"));
      cancel.addEventListener("click", () => this.cancel(order.id));
      item.append(cancel);
    }
    return item;
  }

  // -- actions -----------------------------------------------------------------------------

  async recommend(caseId) {
    this.notice = null;
    try {
      this.recommendation = await this.ctx.api.api("GET", `/api/v1/units/recommend?case=${encodeURIComponent(caseId)}`);
      this.recommended += 1;
    } catch (error) {
      this.recommendation = null;
      this.recommended += 1;
      this.notice = { error: true, text: error.message };
    }
    this.render();
  }

  async dispatch(caseId, units, message, autoEscalate, extra = {}) {
    try {
      const order = await this.ctx.api.api("POST", "/api/v1/dispatches", {
        case: Number(caseId),
        units,
        message,
        auto_escalate: autoEscalate,
        ...extra,
      });
      this.keepOrder(order.id, order);
      this.recommendation = null;
      this.recommended += 1;
      this.notice = { error: false, text: this.t("dispatch.sent", { id: order.id }) };
    } catch (error) {
      this.notice = { error: true, text: error.message };
    }
    this.render();
  }

  async acknowledge(orderId, unit) {
    try {
      const answer = await this.ctx.api.api("POST", `/api/v1/dispatches/${encodeURIComponent(orderId)}/acknowledge`, { unit });
      this.keepOrder(orderId, answer.order);
    } catch (error) {
      this.notice = { error: true, text: error.message };
    }
    this.render();
  }

  async cancel(orderId) {
    const reason = window.prompt(this.t("dispatch.cancel_reason"));
    if (!reason) return;
    try {
      const order = await this.ctx.api.api("POST", `/api/v1/dispatches/${encodeURIComponent(orderId)}/cancel`, { reason });
      this.keepOrder(orderId, order);
    } catch (error) {
      this.notice = { error: true, text: error.message };
    }
    this.render();
  }

  async setStatus(unitId, status) {
    try {
      const unit = await this.ctx.api.api("POST", `/api/v1/units/${encodeURIComponent(unitId)}/status`, { status });
      this.ctx.store.units.set(unit.id, { ...this.ctx.store.units.get(unit.id), ...unit });
    } catch (error) {
      this.notice = { error: true, text: error.message };
    }
    this.render();
  }
}
