// The radio panel: each gateway with its link health and figures, the transceiver's channel and
// PTT state, a channel picker and a hold-to-talk button; the radio log with filters, paging and
// a CSV export; and one unit's thread (its numbered messages: sent, retried, acked, rejected).
// Mounted by the console shell into [data-panel="radio"]. States are shape + word, never colour
// alone.

import { el, keepingFocus, throttled } from "./ui.js";

const LINK_SHAPES = { up: "●", connecting: "◐", down: "✕" };
const MESSAGE_SHAPES = { sent: "◔", retried: "↻", acked: "●", rejected: "✕" };
const DIRECTION_SHAPES = { in: "←", out: "→" };
const KINDS = ["position", "message", "ack", "reject", "bulletin", "status", "other", "undecodable", "ptt"];
const PAGE = 50;
const UNIT_KINDS = ["volunteer", "social_worker", "companion", "fire", "public_order", "medic", "logistics"];
const BULLETIN_LIMIT = 67;
const TUNERS = new Set(["operator", "supervisor", "technician"]);
const TALKERS = new Set(["operator", "supervisor"]);

const STRINGS = {
  id: {
    "radio.gateways": "Gateway",
    "radio.no_gateways": "Belum ada gateway radio yang dikonfigurasi.",
    "radio.link.up": "terhubung",
    "radio.link.connecting": "menyambung",
    "radio.link.down": "terputus",
    "radio.link.unknown": "belum ada laporan",
    "radio.figures": "masuk {in} · keluar {out} · galat {errors} · antrean {queue}",
    "radio.heard": "terakhir terdengar {age}",
    "radio.never_heard": "belum terdengar",
    "radio.busy": "kanal sibuk",
    "radio.rig_online": "rig tersambung",
    "radio.rig_offline": "rig tidak tersambung",
    "radio.channel": "Kanal",
    "radio.set_channel": "Pasang kanal",
    "radio.channel_set": "Kanal {channel} diminta.",
    "radio.ptt.on": "MEMANCAR",
    "radio.ptt.off": "diam",
    "radio.talk": "Tahan untuk bicara",
    "radio.talk_left": "Memancar — lepas untuk berhenti ({s} dtk tersisa)",
    "radio.log": "Log radio",
    "radio.filter.gateway": "Gateway",
    "radio.filter.callsign": "Callsign",
    "radio.filter.direction": "Arah",
    "radio.filter.kind": "Jenis",
    "radio.filter.all": "semua",
    "radio.filter.apply": "Saring",
    "radio.direction.in": "masuk",
    "radio.direction.out": "keluar",
    "radio.kind.position": "posisi",
    "radio.kind.message": "pesan",
    "radio.kind.ack": "konfirmasi",
    "radio.kind.reject": "tolak",
    "radio.kind.bulletin": "buletin",
    "radio.kind.status": "status",
    "radio.kind.other": "lainnya",
    "radio.kind.undecodable": "tak terbaca",
    "radio.kind.ptt": "PTT",
    "radio.no_lines": "Tidak ada baris log.",
    "radio.more": "Lebih lama",
    "radio.csv": "Ekspor CSV",
    "radio.try": "percobaan {n}",
    "radio.thread": "Percakapan unit",
    "radio.thread.unit": "Unit",
    "radio.thread.pick": "Pilih unit radio",
    "radio.thread.none": "Belum ada pesan dengan unit ini.",
    "radio.thread.out": "Dikirim",
    "radio.thread.in": "Diterima",
    "radio.state.sent": "terkirim",
    "radio.state.retried": "diulang",
    "radio.state.acked": "dikonfirmasi",
    "radio.state.rejected": "ditolak",
    "radio.tries": "{n}× kirim",
    "radio.failed": "Gagal: {message}",
    "radio.bulletin": "Buletin",
    "radio.bulletin.group": "Untuk",
    "radio.bulletin.code": "kode grup",
    "radio.bulletin.text": "Teks (maks. 67)",
    "radio.bulletin.gateway": "Lewat",
    "radio.bulletin.every": "semua gateway",
    "radio.bulletin.send": "Kirim buletin",
    "radio.bulletin.sent": "Buletin ke {group} dikirim.",
    "kind.volunteer": "relawan",
    "kind.social_worker": "pekerja sosial",
    "kind.companion": "pendamping",
    "kind.fire": "pemadam",
    "kind.public_order": "ketertiban umum",
    "kind.medic": "medis",
    "kind.logistics": "logistik",
  },
  en: {
    "radio.gateways": "Gateways",
    "radio.no_gateways": "No radio gateway is configured.",
    "radio.link.up": "up",
    "radio.link.connecting": "connecting",
    "radio.link.down": "down",
    "radio.link.unknown": "no report yet",
    "radio.figures": "in {in} · out {out} · errors {errors} · queue {queue}",
    "radio.heard": "last heard {age}",
    "radio.never_heard": "nothing heard yet",
    "radio.busy": "channel busy",
    "radio.rig_online": "rig online",
    "radio.rig_offline": "rig offline",
    "radio.channel": "Channel",
    "radio.set_channel": "Set channel",
    "radio.channel_set": "Channel {channel} requested.",
    "radio.ptt.on": "ON AIR",
    "radio.ptt.off": "idle",
    "radio.talk": "Hold to talk",
    "radio.talk_left": "On air — release to stop ({s} s left)",
    "radio.log": "Radio log",
    "radio.filter.gateway": "Gateway",
    "radio.filter.callsign": "Callsign",
    "radio.filter.direction": "Direction",
    "radio.filter.kind": "Kind",
    "radio.filter.all": "all",
    "radio.filter.apply": "Filter",
    "radio.direction.in": "in",
    "radio.direction.out": "out",
    "radio.kind.position": "position",
    "radio.kind.message": "message",
    "radio.kind.ack": "ack",
    "radio.kind.reject": "reject",
    "radio.kind.bulletin": "bulletin",
    "radio.kind.status": "status",
    "radio.kind.other": "other",
    "radio.kind.undecodable": "undecodable",
    "radio.kind.ptt": "PTT",
    "radio.no_lines": "No log lines.",
    "radio.more": "Older",
    "radio.csv": "Export CSV",
    "radio.try": "try {n}",
    "radio.thread": "Unit thread",
    "radio.thread.unit": "Unit",
    "radio.thread.pick": "Pick a radio unit",
    "radio.thread.none": "No messages with this unit yet.",
    "radio.thread.out": "Sent",
    "radio.thread.in": "Received",
    "radio.state.sent": "sent",
    "radio.state.retried": "retried",
    "radio.state.acked": "acked",
    "radio.state.rejected": "rejected",
    "radio.tries": "sent {n}×",
    "radio.failed": "Failed: {message}",
    "radio.bulletin": "Bulletin",
    "radio.bulletin.group": "To",
    "radio.bulletin.code": "group code",
    "radio.bulletin.text": "Text (max. 67)",
    "radio.bulletin.gateway": "Via",
    "radio.bulletin.every": "every gateway",
    "radio.bulletin.send": "Send bulletin",
    "radio.bulletin.sent": "Bulletin to {group} sent.",
    "kind.volunteer": "volunteers",
    "kind.social_worker": "social workers",
    "kind.companion": "companions",
    "kind.fire": "fire",
    "kind.public_order": "public order",
    "kind.medic": "medics",
    "kind.logistics": "logistics",
  },
};

/** Whether a unit (from the API or a live snapshot) can be reached by radio. */
export function reachedByRadio(unit) {
  return (unit?.channels ?? []).some((channel) => (channel?.channel ?? channel) === "radio");
}

/** Mount the panel; returns { refresh } for the shell. */
export function mount(region, context) {
  if (!document.querySelector('link[href="/static/css/radio.css"]')) {
    document.head.append(el("link", { rel: "stylesheet", href: "/static/css/radio.css" }));
  }
  const panel = new RadioPanel(region, context);
  panel.start();
  return { refresh: () => panel.refresh() };
}

class RadioPanel {
  constructor(region, context) {
    this.region = region;
    this.ctx = context;
    this.t = context.i18n.t;
    this.gateways = [];
    this.lines = [];
    this.nextBefore = null;
    this.paged = false; // an older page is shown: live lines do not push it away
    this.filters = { gateway: "", callsign: "", direction: "", kind: "" };
    this.threadUnit = "";
    this.thread = null;
    this.notice = null;
    this.talking = null; // { gateway, until, timer, tick }
    this.talkButtons = new Map();
    this.pickers = new Map();
    this.filterForm = null;
    this.bulletinForm = null;
    this.bulletinBlockNode = null;
    this.render = throttled(() => this.draw());
    for (const [code, strings] of Object.entries(STRINGS)) context.i18n.addStrings(code, strings);
  }

  get role() {
    return this.ctx.user?.role;
  }

  start() {
    this.ctx.live.subscribe("radio.gateway", (message) => this.gatewayChanged("link", message.payload));
    this.ctx.live.subscribe("radio.transceiver", (message) => this.gatewayChanged("transceiver", message.payload));
    this.ctx.live.subscribe("radio.logged", (message) => this.logged(message.payload.rows ?? []));
    this.ctx.store.addEventListener("change", (event) => {
      const topic = event.detail?.topic ?? "";
      if (topic === "load" || topic === "clock" || topic.startsWith("unit.")) this.render();
    });
    this.ctx.i18n.onLangChange(() => this.render());
    document.addEventListener("radio:thread", (event) => this.openThread(String(event.detail ?? "")));
    this.refresh();
  }

  async refresh() {
    await Promise.allSettled([this.loadGateways(), this.loadLog(), this.loadThread()]);
    this.render();
  }

  async loadGateways() {
    try {
      this.gateways = (await this.ctx.api.api("GET", "/api/v1/radio/gateways")).gateways;
    } catch (error) {
      this.fail(error);
    }
  }

  query(extra = {}) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries({ ...this.filters, ...extra })) {
      if (value !== "" && value !== null && value !== undefined) params.set(key, String(value));
    }
    return params.toString();
  }

  async loadLog(before = null) {
    try {
      const page = await this.ctx.api.api("GET", `/api/v1/radio/log?${this.query({ limit: PAGE, before_id: before })}`);
      this.lines = before === null ? this.withLive(page.lines) : [...this.lines, ...page.lines];
      this.nextBefore = page.next_before_id;
      this.paged = before !== null;
    } catch (error) {
      this.fail(error);
    }
  }

  async loadThread() {
    if (!this.threadUnit) {
      this.thread = null;
      return;
    }
    try {
      this.thread = await this.ctx.api.api("GET", `/api/v1/radio/units/${encodeURIComponent(this.threadUnit)}/thread`);
    } catch (error) {
      this.thread = null;
      this.fail(error);
    }
  }

  async openThread(unitId) {
    this.threadUnit = unitId;
    await this.loadThread();
    this.render();
    this.region.querySelector(".radio-thread")?.scrollIntoView?.({ block: "nearest" });
  }

  gatewayChanged(part, payload) {
    const gateway = this.gateways.find((item) => item.id === payload.gateway);
    if (!gateway) return;
    const { gateway: _id, url: _url, ...state } = payload;
    gateway[part] = state;
    this.render();
  }

  matches(row) {
    const f = this.filters;
    if (f.gateway && row.gateway !== f.gateway) return false;
    if (f.direction && row.direction !== f.direction) return false;
    if (f.kind && row.kind !== f.kind) return false;
    if (f.callsign) {
      const want = f.callsign.toUpperCase();
      const call = String(row.callsign).toUpperCase();
      if (want.includes("-") ? call !== want : call.split("-")[0] !== want) return false;
    }
    return true;
  }

  /** A first page, plus the matching lines that arrived live while it was fetched.
   *
   * The page is what the database held when the hub read it; a line committed after that came
   * only over the live socket, maybe while the request was in flight. Ids grow with commits, so
   * a matching line newer than the page's newest (or any, when the page is empty) is such a one.
   */
  withLive(lines) {
    const newest = lines.length ? lines[0].id : -Infinity;
    const live = this.lines.filter((row) => row.id > newest && this.matches(row));
    return [...live, ...lines];
  }

  logged(rows) {
    if (!this.paged) {
      const fresh = rows.filter((row) => this.matches(row)).reverse();
      this.lines = [...fresh, ...this.lines].slice(0, Math.max(PAGE, this.lines.length));
    }
    const calls = new Set(this.thread?.callsigns ?? []);
    if (this.threadUnit && rows.some((row) => row.unit_id === this.threadUnit || calls.has(String(row.callsign).toUpperCase()))) {
      this.loadThread().then(() => this.render());
    }
    this.render();
  }

  fail(error) {
    if (error?.status === 401) return;
    this.notice = ["bad", `✕ ${this.t("radio.failed", { message: error?.message ?? String(error) })}`];
  }

  // -- commands ---------------------------------------------------------------------------------

  async setChannel(gateway, channel) {
    try {
      await this.ctx.api.api("POST", `/api/v1/radio/gateways/${encodeURIComponent(gateway.id)}/channel`, { channel });
      this.notice = ["ok", `✓ ${this.t("radio.channel_set", { channel })}`];
    } catch (error) {
      this.fail(error);
    }
    this.render();
  }

  async key(gateway, on) {
    if (on) {
      if (this.talking) return;
      // Bounded here too: the hub unkeys after tx_timeout whatever the browser does.
      const until = Date.now() + gateway.tx_timeout * 1000;
      this.talking = {
        gateway: gateway.id,
        until,
        timer: setTimeout(() => this.key(this.gatewayById(gateway.id), false), gateway.tx_timeout * 1000),
        tick: setInterval(() => this.render(), 1000),
      };
      this.render();
    } else {
      if (!this.talking || this.talking.gateway !== gateway.id) return;
      clearTimeout(this.talking.timer);
      clearInterval(this.talking.tick);
      this.talking = null;
      this.render();
    }
    try {
      await this.ctx.api.api("POST", `/api/v1/radio/gateways/${encodeURIComponent(gateway.id)}/ptt`, { on });
    } catch (error) {
      this.fail(error);
      this.render();
    }
  }

  // -- drawing ----------------------------------------------------------------------------------

  draw() {
    keepingFocus(this.region, () =>
      this.region.replaceChildren(...[this.noticeLine(), this.gatewayBlock(), this.bulletinBlock(), this.logBlock(), this.threadBlock()].filter(Boolean)),
    );
  }

  noticeLine() {
    if (!this.notice) return null;
    return el("p", { className: "result radio-result", role: "status", dataset: { tone: this.notice[0] } }, this.notice[1]);
  }

  gatewayBlock() {
    const heading = el("h3", {}, this.t("radio.gateways"));
    if (!this.gateways.length) return el("div", { className: "radio-gateways" }, heading, el("p", { className: "muted" }, this.t("radio.no_gateways")));
    return el("div", { className: "radio-gateways" }, heading, el("ul", { className: "rows" }, this.gateways.map((g) => this.gatewayRow(g))));
  }

  gatewayRow(gateway) {
    const link = gateway.link;
    const state = link?.link ?? "unknown";
    const rig = gateway.transceiver;
    const onAir = Boolean(rig?.ptt) || this.talking?.gateway === gateway.id;
    const row = el(
      "li",
      { className: "radio-gateway", dataset: { gateway: gateway.id, link: state, ptt: String(onAir) } },
      el(
        "p",
        {},
        el("strong", {}, gateway.name),
        " ",
        el("span", { className: "mark radio-link", dataset: { tone: state === "up" ? "ok" : state === "down" ? "bad" : "warn" } },
          el("span", { "aria-hidden": "true" }, LINK_SHAPES[state] ?? "◌"), ` ${this.t(`radio.link.${state}`)}`),
        link?.detail ? el("span", { className: "muted" }, ` · ${link.detail}`) : null,
      ),
      link
        ? el(
            "p",
            { className: "muted radio-figures" },
            this.t("radio.figures", { in: link.frames_in, out: link.frames_out, errors: link.decode_errors, queue: link.transmit_queue }),
            " · ",
            link.last_heard ? this.t("radio.heard", { age: this.ctx.time.ago(link.last_heard) }) : this.t("radio.never_heard"),
            link.channel_busy ? el("span", { className: "radio-busy" }, ` · ▲ ${this.t("radio.busy")}`) : null,
          )
        : null,
      this.rigLine(gateway, rig, onAir),
    );
    if (gateway.has_rig && gateway.channels.length && TUNERS.has(this.role)) row.append(this.channelPicker(gateway, rig));
    if (gateway.ptt !== "none" && TALKERS.has(this.role)) row.append(this.talkButton(gateway));
    return row;
  }

  rigLine(gateway, rig, onAir) {
    // PTT is shown where the room keys the set; the rig's state where the room tunes it.
    const ptt =
      gateway.ptt === "none"
        ? null
        : el("span", { className: "mark radio-ptt", dataset: { tone: onAir ? "bad" : "ok" } },
            el("span", { "aria-hidden": "true" }, onAir ? "◉" : "○"), ` PTT ${this.t(onAir ? "radio.ptt.on" : "radio.ptt.off")}`);
    const tuned =
      gateway.has_rig && rig
        ? [
            ptt ? " · " : "",
            el("span", { className: "radio-rig-state" },
              el("span", { "aria-hidden": "true" }, rig.rig_online ? "● " : "✕ "), this.t(rig.rig_online ? "radio.rig_online" : "radio.rig_offline")),
            rig.channel ? el("strong", { className: "radio-current" }, ` · ${rig.channel}`) : "",
            rig.frequency ? ` · ${(rig.frequency / 1e6).toFixed(4)} MHz` : "",
            rig.mode ? ` ${rig.mode}` : "",
          ]
        : null;
    if (!ptt && !tuned) return null;
    return el("p", { className: "radio-rig" }, ptt, tuned);
  }

  channelPicker(gateway, rig) {
    // Kept across redraws: a live update must not undo a pick that is not sent yet.
    let picker = this.pickers.get(gateway.id);
    if (!picker) {
      const id = `radio-channel-${gateway.id}`;
      const select = el(
        "select",
        { id, name: id },
        gateway.channels.map((plan) =>
          el("option", { value: plan.name, selected: plan.name === (rig?.channel ?? gateway.default_channel) },
            `${plan.name} (${(plan.frequency / 1e6).toFixed(4)} MHz ${plan.mode})`),
        ),
      );
      const button = el("button", { type: "button", className: "radio-set-channel" }, "");
      button.addEventListener("click", () => this.setChannel(gateway, select.value));
      picker = el("p", { className: "radio-channel" }, el("label", { htmlFor: id }, ""), select, " ", button);
      this.pickers.set(gateway.id, picker);
    }
    picker.querySelector("label").textContent = `${this.t("radio.channel")} `;
    picker.querySelector("button").textContent = this.t("radio.set_channel");
    return picker;
  }

  talkButton(gateway) {
    // One button per gateway for the panel's life: a redraw while it is held moves it, never
    // replaces it, and the release is heard on the window wherever the pointer ends up.
    let button = this.talkButtons.get(gateway.id);
    if (!button) {
      button = el("button", { type: "button", className: "radio-talk", id: `radio-talk-${gateway.id}` });
      const release = () => this.key(this.gatewayById(gateway.id), false);
      const press = (event) => {
        event.preventDefault();
        window.addEventListener("pointerup", release, { once: true });
        window.addEventListener("pointercancel", release, { once: true });
        this.key(this.gatewayById(gateway.id), true);
      };
      button.addEventListener("pointerdown", press);
      button.addEventListener("keydown", (event) => {
        if ((event.key === " " || event.key === "Enter") && !event.repeat) press(event);
      });
      button.addEventListener("keyup", (event) => {
        if (event.key === " " || event.key === "Enter") release();
      });
      window.addEventListener("blur", release);
      this.talkButtons.set(gateway.id, button);
    }
    const mine = this.talking?.gateway === gateway.id;
    const left = mine ? Math.max(0, Math.ceil((this.talking.until - Date.now()) / 1000)) : 0;
    button.setAttribute("aria-pressed", String(mine));
    button.replaceChildren(
      el("span", { "aria-hidden": "true" }, mine ? "◉ " : "○ "),
      mine ? this.t("radio.talk_left", { s: left }) : this.t("radio.talk"),
    );
    return el("p", {}, button);
  }

  gatewayById(id) {
    return this.gateways.find((gateway) => gateway.id === id) ?? { id, tx_timeout: 0 };
  }

  bulletinBlock() {
    if (!TALKERS.has(this.role) || !this.gateways.length) return null;
    // Kept across redraws, so a live update neither closes it nor loses what is typed.
    if (!this.bulletinBlockNode) {
      this.bulletinForm = this.buildBulletinForm();
      this.bulletinBlockNode = el("details", { className: "radio-bulletin" }, el("summary", {}, ""), this.bulletinForm);
    }
    this.bulletinBlockNode.querySelector("summary").textContent = this.t("radio.bulletin");
    const via = this.bulletinForm.querySelector("#radio-bulletin-gateway");
    const chosen = via.value;
    via.replaceChildren(
      el("option", { value: "" }, this.t("radio.bulletin.every")),
      ...this.gateways.map((g) => el("option", { value: g.id, selected: g.id === chosen }, g.name)),
    );
    return this.bulletinBlockNode;
  }

  buildBulletinForm() {
    const form = el("form", {});
    const group = el(
      "select",
      { id: "radio-bulletin-group", name: "group" },
      UNIT_KINDS.map((kind) => el("option", { value: kind }, this.t(`kind.${kind}`))),
      el("option", { value: "" }, this.t("radio.bulletin.code")),
    );
    const code = el("input", { id: "radio-bulletin-code", name: "code", size: 6, maxLength: 5, autocomplete: "off", pattern: "[A-Za-z0-9]{1,5}", "aria-label": this.t("radio.bulletin.code") });
    const text = el("input", { id: "radio-bulletin-text", name: "text", maxLength: BULLETIN_LIMIT, size: 30, required: true, autocomplete: "off" });
    form.append(
      el("label", {}, `${this.t("radio.bulletin.group")} `, group),
      " ",
      code,
      el("label", {}, ` ${this.t("radio.bulletin.text")} `, text),
      el("label", {}, ` ${this.t("radio.bulletin.gateway")} `, el("select", { id: "radio-bulletin-gateway", name: "gateway" })),
      " ",
      el("button", { type: "submit" }, this.t("radio.bulletin.send")),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { group: group.value || code.value.trim(), text: text.value.trim() };
      const via = form.querySelector("#radio-bulletin-gateway").value;
      if (via) body.gateway = via;
      try {
        const sent = await this.ctx.api.api("POST", "/api/v1/radio/bulletins", body);
        this.notice = ["ok", `✓ ${this.t("radio.bulletin.sent", { group: sent.group })}`];
        text.value = "";
      } catch (error) {
        this.fail(error);
      }
      this.render();
    });
    return form;
  }

  logBlock() {
    if (!this.filterForm) this.filterForm = this.buildFilterForm();
    this.updateFilterForm();
    const csv = el("a", { className: "radio-csv", href: `/api/v1/radio/log.csv?${this.query()}`, download: "radio-log.csv" }, `⇩ ${this.t("radio.csv")}`);
    const list = this.lines.length
      ? el("ol", { className: "rows radio-lines" }, this.lines.map((row) => this.lineRow(row)))
      : el("p", { className: "muted" }, this.t("radio.no_lines"));
    let more = null;
    if (this.nextBefore !== null) {
      more = el("button", { type: "button", className: "radio-more" }, this.t("radio.more"));
      more.addEventListener("click", async () => {
        await this.loadLog(this.nextBefore);
        this.render();
      });
    }
    return el("div", { className: "radio-log" }, el("h3", {}, this.t("radio.log")), this.filterForm, el("p", {}, csv), list, more);
  }

  /** The filter form, built once: a live update must not undo a choice that is not applied. */
  buildFilterForm() {
    const form = el("form", { className: "radio-filters" });
    const field = (name, control) => el("label", { dataset: { label: name } }, el("span", {}, ""), " ", control);
    const choice = (name) => el("select", { id: `radio-filter-${name}`, name });
    form.append(
      field("gateway", choice("gateway")),
      field("callsign", el("input", { id: "radio-filter-callsign", name: "callsign", value: this.filters.callsign, size: 9, maxLength: 9, autocomplete: "off" })),
      field("direction", choice("direction")),
      field("kind", choice("kind")),
      el("button", { type: "submit" }, ""),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      this.filters = Object.fromEntries(Object.keys(this.filters).map((key) => [key, String(data.get(key) ?? "").trim()]));
      await this.loadLog();
      this.render();
    });
    return form;
  }

  updateFilterForm() {
    const form = this.filterForm;
    for (const label of form.querySelectorAll("label[data-label]")) {
      label.firstChild.textContent = this.t(`radio.filter.${label.dataset.label}`);
    }
    form.querySelector("button[type=submit]").textContent = this.t("radio.filter.apply");
    const options = {
      gateway: this.gateways.map((g) => [g.id, g.id]),
      direction: ["in", "out"].map((d) => [d, this.t(`radio.direction.${d}`)]),
      kind: KINDS.map((k) => [k, this.t(`radio.kind.${k}`)]),
    };
    for (const [name, values] of Object.entries(options)) {
      const select = form.querySelector(`#radio-filter-${name}`);
      const signature = JSON.stringify([this.t("radio.filter.all"), values]);
      if (select.dataset.signature === signature) continue; // untouched: an open list stays open
      select.dataset.signature = signature;
      const chosen = select.options.length ? select.value : this.filters[name];
      select.replaceChildren(
        el("option", { value: "" }, this.t("radio.filter.all")),
        ...values.map(([value, label]) => el("option", { value, selected: value === chosen }, label)),
      );
    }
  }

  lineRow(row) {
    return el(
      "li",
      { dataset: { line: String(row.id), direction: row.direction, kind: row.kind } },
      el("time", { dateTime: row.at }, this.ctx.time.formatTime(row.at, true)),
      " ",
      el("span", { className: "radio-direction" }, el("span", { "aria-hidden": "true" }, DIRECTION_SHAPES[row.direction]), ` ${this.t(`radio.direction.${row.direction}`)}`),
      ` · ${row.gateway} · ${this.t(`radio.kind.${row.kind}`)} · `,
      el("strong", {}, row.callsign),
      row.number ? ` #${row.number}` : "",
      row.attempt && row.attempt > 1 ? ` (${this.t("radio.try", { n: row.attempt })})` : "",
      row.text ? el("span", { className: "radio-text" }, ` ${row.text}`) : null,
    );
  }

  threadBlock() {
    const units = [...this.ctx.store.units.values()].filter(reachedByRadio).sort((a, b) => String(a.callsign ?? a.id).localeCompare(String(b.callsign ?? b.id)));
    const select = el(
      "select",
      { id: "radio-thread-unit", name: "radio-thread-unit" },
      el("option", { value: "" }, this.t("radio.thread.pick")),
      units.map((unit) => el("option", { value: unit.id, selected: unit.id === this.threadUnit }, unit.callsign ?? unit.id)),
    );
    if (this.threadUnit && !units.some((unit) => unit.id === this.threadUnit)) {
      select.append(el("option", { value: this.threadUnit, selected: true }, this.threadUnit));
    }
    select.addEventListener("change", () => this.openThread(select.value));
    const block = el("div", { className: "radio-thread" }, el("h3", {}, this.t("radio.thread")), el("label", {}, `${this.t("radio.thread.unit")} `, select));
    if (!this.thread) return block;
    const { outgoing, incoming } = this.thread;
    if (!outgoing.length && !incoming.length) {
      block.append(el("p", { className: "muted" }, this.t("radio.thread.none")));
      return block;
    }
    block.append(
      el("h4", {}, this.t("radio.thread.out")),
      el(
        "ol",
        { className: "rows radio-messages" },
        outgoing.map((message) =>
          el(
            "li",
            { dataset: { number: message.number, state: message.state } },
            el("span", { className: "mark radio-state", dataset: { tone: message.state === "acked" ? "ok" : message.state === "rejected" ? "bad" : "warn" } },
              el("span", { "aria-hidden": "true" }, MESSAGE_SHAPES[message.state] ?? "•"), ` ${this.t(`radio.state.${message.state}`)}`),
            ` #${message.number} · ${this.t("radio.tries", { n: message.tries })} · `,
            el("time", { dateTime: message.last_sent }, this.ctx.time.formatTime(message.last_sent, true)),
            el("span", { className: "radio-text" }, ` ${message.text}`),
          ),
        ),
      ),
    );
    if (incoming.length) {
      block.append(
        el("h4", {}, this.t("radio.thread.in")),
        el("ol", { className: "rows radio-incoming" }, incoming.map((row) => this.lineRow(row))),
      );
    }
    return block;
  }
}
