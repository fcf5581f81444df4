// The console's wall administration (supervisors): create, resize, rename and delete walls, and
// pair or unpair their screens. Everything goes through the walls API, so each change is checked,
// audited and published there; a bad value is answered with the API's error next to its field.
// Other roles see nothing of it: the region stays hidden.

import { deviceBadge, el, keepingFocus } from "./ui.js";

const STRINGS = {
  id: {
    "walladmin.title": "Kelola dinding",
    "walladmin.walls": "Dinding",
    "walladmin.none": "Belum ada dinding.",
    "walladmin.grid": "{rows} baris × {columns} kolom",
    "walladmin.screens": "Layar",
    "walladmin.no_screens": "Belum ada layar terpasang.",
    "walladmin.last_used": "terakhir masuk {when}",
    "walladmin.never_used": "belum pernah masuk",
    "walladmin.create": "Buat dinding baru",
    "walladmin.name": "Nama (huruf kecil, angka, - _)",
    "walladmin.wall_title": "Judul",
    "walladmin.rows": "Baris (1–8)",
    "walladmin.columns": "Kolom (1–8)",
    "walladmin.create_submit": "Buat dinding",
    "walladmin.edit": "Ubah judul dan ukuran",
    "walladmin.save": "Simpan",
    "walladmin.delete": "Hapus dinding",
    "walladmin.delete_confirm": "Hapus dinding {wall} beserta preset dan layarnya? Layarnya langsung keluar.",
    "walladmin.delete_yes": "Ya, hapus",
    "walladmin.cancel": "Batal",
    "walladmin.pair": "Pasangkan layar",
    "walladmin.screen_name": "Nama layar",
    "walladmin.pair_submit": "Pasangkan",
    "walladmin.unpair": "Lepas",
    "walladmin.unpair_confirm": "Lepas layar {screen} dari {wall}? Layar itu langsung keluar.",
    "walladmin.unpair_yes": "Ya, lepas",
    "walladmin.paired": "Layar {screen} dipasangkan ke {wall}.",
    "walladmin.pair_url": "Buka alamat ini sekali di layar itu:",
    "walladmin.token": "Token",
    "walladmin.once": "Token dan alamat ini hanya ditampilkan sekali. Salin sekarang; jika hilang, lepas dan pasangkan lagi.",
    "walladmin.copy": "Salin alamat",
    "walladmin.copied": "Alamat disalin.",
    "walladmin.copy_failed": "Tidak bisa menyalin; pilih alamatnya dan salin sendiri.",
    "walladmin.dismiss": "Sudah saya salin",
    "walladmin.created": "Dinding {wall} dibuat.",
    "walladmin.updated": "Dinding {wall} diperbarui.",
    "walladmin.deleted": "Dinding {wall} dihapus.",
    "walladmin.unpaired": "Layar {screen} dilepas dari {wall}.",
    "walladmin.error": "Gagal: {message}",
    "walladmin.field_error": "Periksa isian: {message}",
  },
  en: {
    "walladmin.title": "Manage walls",
    "walladmin.walls": "Walls",
    "walladmin.none": "No walls yet.",
    "walladmin.grid": "{rows} rows × {columns} columns",
    "walladmin.screens": "Screens",
    "walladmin.no_screens": "No screens paired yet.",
    "walladmin.last_used": "last signed in {when}",
    "walladmin.never_used": "never signed in",
    "walladmin.create": "Create a wall",
    "walladmin.name": "Name (lower-case letters, digits, - _)",
    "walladmin.wall_title": "Title",
    "walladmin.rows": "Rows (1–8)",
    "walladmin.columns": "Columns (1–8)",
    "walladmin.create_submit": "Create wall",
    "walladmin.edit": "Change title and size",
    "walladmin.save": "Save",
    "walladmin.delete": "Delete wall",
    "walladmin.delete_confirm": "Delete wall {wall} with its presets and screens? Its screens are signed out at once.",
    "walladmin.delete_yes": "Yes, delete",
    "walladmin.cancel": "Cancel",
    "walladmin.pair": "Pair a screen",
    "walladmin.screen_name": "Screen name",
    "walladmin.pair_submit": "Pair",
    "walladmin.unpair": "Unpair",
    "walladmin.unpair_confirm": "Unpair screen {screen} from {wall}? It is signed out at once.",
    "walladmin.unpair_yes": "Yes, unpair",
    "walladmin.paired": "Screen {screen} paired to {wall}.",
    "walladmin.pair_url": "Open this address once on that screen:",
    "walladmin.token": "Token",
    "walladmin.once": "This token and address are shown only once. Copy them now; if lost, unpair and pair again.",
    "walladmin.copy": "Copy address",
    "walladmin.copied": "Address copied.",
    "walladmin.copy_failed": "Could not copy; select the address and copy it yourself.",
    "walladmin.dismiss": "I have copied it",
    "walladmin.created": "Wall {wall} created.",
    "walladmin.updated": "Wall {wall} updated.",
    "walladmin.deleted": "Wall {wall} deleted.",
    "walladmin.unpaired": "Screen {screen} unpaired from {wall}.",
    "walladmin.error": "Failed: {message}",
    "walladmin.field_error": "Check the form: {message}",
  },
};

const path = (...parts) => `/api/v1/walls/${parts.map(encodeURIComponent).join("/")}`;

/** A labelled field with its error line (filled from the API's error body). */
function field(id, label, props) {
  return el(
    "div",
    { className: "field" },
    el("label", { htmlFor: id }, label),
    el("input", { id, "aria-describedby": `${id}-error`, ...props }),
    el("p", { id: `${id}-error`, className: "error field-error", role: "alert", hidden: true }),
  );
}

class WallAdmin {
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.region = root.closest("section") ?? root;
    this.walls = [];
    this.screens = new Map(); // wall name -> screens
    this.user = null; // whose work the state below is
    this.confirming = null; // {kind: "delete"|"unpair", wall, screen}
    this.pairing = null; // the answer of the last pairing, shown once
    this.message = "";
    this.tone = "";
    this.errors = {}; // input id -> message
    this.values = {}; // input id -> typed value, kept across renders
    ctx.i18n.addStrings("id", STRINGS.id);
    ctx.i18n.addStrings("en", STRINGS.en);
    ctx.i18n.onLangChange(() => this.render());
    ctx.live.subscribe("wall.changed", () => this.refresh());
    ctx.store.addEventListener("change", (event) => {
      if (String(event.detail?.topic ?? "").startsWith("device.")) this.showStates();
    });
  }

  get allowed() {
    return this.ctx.user?.role === "supervisor";
  }

  t(key, values) {
    return this.ctx.i18n.t(key, values);
  }

  async refresh() {
    const user = this.ctx.user?.id ?? null;
    if (user !== this.user) {
      // Someone else signed in: nothing of the last person's work (a one-time token) stays.
      this.user = user;
      Object.assign(this, { pairing: null, confirming: null, message: "", tone: "", errors: {}, values: {} });
    }
    this.region.hidden = !this.allowed;
    if (!this.allowed) {
      this.root.replaceChildren();
      return;
    }
    try {
      this.walls = (await this.ctx.api.api("GET", "/api/v1/walls")).walls;
      const lists = await Promise.all(this.walls.map((wall) => this.ctx.api.api("GET", path(wall.name, "screens"))));
      this.screens = new Map(this.walls.map((wall, index) => [wall.name, lists[index].screens]));
    } catch (error) {
      if (error.status !== 401) this.say(this.t("walladmin.error", { message: error.message }), "bad");
      return;
    }
    this.render();
  }

  say(text, tone) {
    this.message = text;
    this.tone = tone;
    this.render();
  }

  /** Run an API call from a form; a field error goes next to its field (prefix + field). */
  async run(call, { prefix, fields, success }) {
    this.errors = {};
    this.message = "";
    try {
      const result = await call();
      this.say(success(result), "ok");
      await this.refresh();
      return true;
    } catch (error) {
      if (error.status === 401) return false;
      const name = String(error.field ?? "").split(".")[0];
      if (prefix && fields.includes(name)) {
        this.errors[`${prefix}-${name}`] = error.message;
        this.say(this.t("walladmin.field_error", { message: error.message }), "bad");
        this.root.querySelector(`#${prefix}-${name}`)?.focus();
      } else {
        this.say(this.t("walladmin.error", { message: error.message }), "bad");
      }
      return false;
    }
  }

  value(id) {
    return (this.root.querySelector(`#${CSS.escape(id)}`)?.value ?? "").trim();
  }

  async create(event) {
    event.preventDefault();
    const name = this.value("walladmin-new-name");
    const body = {
      title: this.value("walladmin-new-title"),
      rows: Number(this.value("walladmin-new-rows")),
      columns: Number(this.value("walladmin-new-columns")),
    };
    const done = await this.run(() => this.ctx.api.api("PUT", path(name || " "), body), {
      prefix: "walladmin-new",
      fields: ["name", "title", "rows", "columns"],
      success: () => this.t("walladmin.created", { wall: name }),
    });
    if (done) for (const id of ["name", "title", "rows", "columns"]) delete this.values[`walladmin-new-${id}`];
    this.render();
  }

  async update(event, wall) {
    event.preventDefault();
    const prefix = `walladmin-edit-${wall.name}`;
    const body = {
      title: this.value(`${prefix}-title`),
      rows: Number(this.value(`${prefix}-rows`)),
      columns: Number(this.value(`${prefix}-columns`)),
    };
    // The tiles stay where they are; cells beyond a smaller grid are dropped.
    body.tiles = wall.tiles.slice(0, Math.max(0, body.rows * body.columns));
    const done = await this.run(() => this.ctx.api.api("PUT", path(wall.name), body), {
      prefix,
      fields: ["title", "rows", "columns"],
      success: () => this.t("walladmin.updated", { wall: wall.name }),
    });
    if (done) for (const id of ["title", "rows", "columns"]) delete this.values[`${prefix}-${id}`];
    this.render();
  }

  async remove(wall) {
    this.confirming = null;
    await this.run(() => this.ctx.api.api("DELETE", path(wall)), {
      success: () => this.t("walladmin.deleted", { wall }),
    });
    this.root.querySelector("#walladmin-new-name")?.focus();
  }

  async pair(event, wall) {
    event.preventDefault();
    const prefix = `walladmin-pair-${wall}`;
    const screen = this.value(`${prefix}-screen`);
    const done = await this.run(() => this.ctx.api.api("POST", path(wall, "screens"), { screen }), {
      prefix,
      fields: ["screen"],
      success: (result) => {
        this.pairing = { ...result, url: new URL(result.pair_path, location.origin).href };
        return this.t("walladmin.paired", { screen, wall });
      },
    });
    if (done) delete this.values[`${prefix}-screen`];
    this.render();
    if (done) this.root.querySelector(".walladmin-pair-url")?.focus();
  }

  async unpair(wall, screen) {
    this.confirming = null;
    if (this.pairing?.wall === wall && this.pairing?.screen === screen) this.pairing = null;
    await this.run(() => this.ctx.api.api("DELETE", path(wall, "screens", screen)), {
      success: () => this.t("walladmin.unpaired", { screen, wall }),
    });
  }

  async copy() {
    const input = this.root.querySelector(".walladmin-pair-url");
    try {
      await navigator.clipboard.writeText(this.pairing.url);
      this.say(this.t("walladmin.copied"), "ok");
    } catch {
      input?.select();
      this.say(this.t("walladmin.copy_failed"), "bad");
    }
    this.root.querySelector("#walladmin-copy")?.focus();
  }

  button(id, label, handler, props = {}) {
    const node = el("button", { type: "button", id, ...props }, label);
    node.addEventListener("click", handler);
    return node;
  }

  /** Leave a confirmation without acting; the focus goes back to the button that asked. */
  cancel() {
    const trigger = this.confirming?.trigger;
    this.confirming = null;
    this.render();
    if (trigger) this.root.querySelector(`#${CSS.escape(trigger)}`)?.focus();
  }

  confirmBox(text, yesId, yesLabel, onYes) {
    const box = el(
      "div",
      { className: "confirm", role: "alertdialog", "aria-label": text },
      el("p", {}, el("span", { "aria-hidden": "true" }, "⚠ "), text),
      this.button(yesId, yesLabel, onYes, { className: "danger" }),
      this.button("walladmin-cancel", this.t("walladmin.cancel"), () => this.cancel()),
    );
    box.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      event.stopPropagation(); // not the console's Esc (clear the selection)
      this.cancel();
    });
    return box;
  }

  /** An input that keeps what was typed across renders, with its error from the API. */
  input(id, label, props, initial = "") {
    const block = field(id, label, { value: this.values[id] ?? initial, ...props });
    const input = block.querySelector("input");
    input.addEventListener("input", () => {
      this.values[id] = input.value;
    });
    const error = this.errors[id];
    if (error) {
      input.setAttribute("aria-invalid", "true");
      const line = block.querySelector(".field-error");
      line.hidden = false;
      line.replaceChildren(el("span", { "aria-hidden": "true" }, "✕ "), error);
    }
    return block;
  }

  /** A screen's state changed: update its badge in place (a redraw would disturb typing). */
  showStates() {
    for (const item of this.root.querySelectorAll("li[data-device]")) {
      const state = this.ctx.store.devices.get(item.dataset.device)?.state ?? "unknown";
      if (item.dataset.state === state) continue;
      item.dataset.state = state;
      item.firstElementChild.replaceWith(deviceBadge(state));
    }
  }

  screenItem(wall, screen) {
    const device = this.ctx.store.devices.get(screen.device_id);
    const used = screen.last_used_at
      ? this.t("walladmin.last_used", { when: this.ctx.time.formatDateTime(screen.last_used_at) })
      : this.t("walladmin.never_used");
    const item = el(
      "li",
      { dataset: { screen: screen.screen, device: screen.device_id, state: device?.state ?? "unknown" } },
      deviceBadge(device?.state ?? "unknown"),
      " ",
      el("strong", {}, screen.screen),
      el("span", { className: "muted" }, ` · ${used} `),
      this.button(`walladmin-unpair-${wall.name}-${screen.screen}`, this.t("walladmin.unpair"), () => {
        this.confirming = { kind: "unpair", wall: wall.name, screen: screen.screen, trigger: `walladmin-unpair-${wall.name}-${screen.screen}` };
        this.render();
        this.root.querySelector("#walladmin-cancel")?.focus();
      }),
    );
    const confirming = this.confirming;
    if (confirming?.kind === "unpair" && confirming.wall === wall.name && confirming.screen === screen.screen) {
      item.append(
        this.confirmBox(
          this.t("walladmin.unpair_confirm", { screen: screen.screen, wall: wall.name }),
          "walladmin-unpair-yes",
          this.t("walladmin.unpair_yes"),
          () => this.unpair(wall.name, screen.screen),
        ),
      );
    }
    return item;
  }

  wallItem(wall) {
    const screens = this.screens.get(wall.name) ?? [];
    const edit = `walladmin-edit-${wall.name}`;
    const pair = `walladmin-pair-${wall.name}`;
    const editForm = el(
      "form",
      { className: "walladmin-form", noValidate: true },
      this.input(`${edit}-title`, this.t("walladmin.wall_title"), { maxLength: 80 }, wall.title),
      this.input(`${edit}-rows`, this.t("walladmin.rows"), { type: "number", min: 1, max: 8, required: true }, String(wall.rows)),
      this.input(`${edit}-columns`, this.t("walladmin.columns"), { type: "number", min: 1, max: 8, required: true }, String(wall.columns)),
      el("button", { type: "submit", id: `${edit}-save` }, this.t("walladmin.save")),
    );
    editForm.addEventListener("submit", (event) => this.update(event, wall));
    const pairForm = el(
      "form",
      { className: "walladmin-form", noValidate: true },
      this.input(`${pair}-screen`, this.t("walladmin.screen_name"), { maxLength: 64, autocomplete: "off", spellcheck: false }),
      el("button", { type: "submit", id: `${pair}-submit` }, this.t("walladmin.pair_submit")),
    );
    pairForm.addEventListener("submit", (event) => this.pair(event, wall.name));
    const item = el(
      "li",
      { className: "walladmin-wall", dataset: { wall: wall.name } },
      el("h4", {}, wall.title || wall.name, el("span", { className: "muted" }, ` · ${wall.name} · ${this.t("walladmin.grid", { rows: wall.rows, columns: wall.columns })}`)),
      el("h5", {}, this.t("walladmin.screens")),
      screens.length
        ? el("ul", { className: "rows walladmin-screens" }, screens.map((screen) => this.screenItem(wall, screen)))
        : el("p", { className: "muted" }, this.t("walladmin.no_screens")),
      el("details", {}, el("summary", {}, this.t("walladmin.pair")), pairForm),
      el("details", {}, el("summary", {}, this.t("walladmin.edit")), editForm),
      this.button(`walladmin-delete-${wall.name}`, this.t("walladmin.delete"), () => {
        this.confirming = { kind: "delete", wall: wall.name, trigger: `walladmin-delete-${wall.name}` };
        this.render();
        this.root.querySelector("#walladmin-cancel")?.focus();
      }),
    );
    // A form with an error or typed text stays open after a render.
    for (const details of item.querySelectorAll("details")) {
      if ([...details.querySelectorAll("input")].some((input) => this.errors[input.id] || input.id in this.values)) details.open = true;
    }
    if (this.confirming?.kind === "delete" && this.confirming.wall === wall.name) {
      item.append(
        this.confirmBox(
          this.t("walladmin.delete_confirm", { wall: wall.title || wall.name }),
          "walladmin-delete-yes",
          this.t("walladmin.delete_yes"),
          () => this.remove(wall.name),
        ),
      );
    }
    return item;
  }

  pairingBox() {
    const pairing = this.pairing;
    // No id: the one-time address must not be kept with the drafts of an expired session.
    const url = el("textarea", { className: "walladmin-pair-url", readOnly: true, rows: 3, value: pairing.url, spellcheck: false, "aria-describedby": "walladmin-once" });
    url.addEventListener("focus", () => url.select());
    return el(
      "section",
      { className: "walladmin-pairing", "aria-labelledby": "walladmin-pairing-title", dataset: { wall: pairing.wall, screen: pairing.screen } },
      el("h4", { id: "walladmin-pairing-title" }, this.t("walladmin.paired", { screen: pairing.screen, wall: pairing.wall })),
      el("p", { id: "walladmin-once", className: "note" }, el("span", { "aria-hidden": "true" }, "⚠ "), this.t("walladmin.once")),
      el("label", {}, this.t("walladmin.pair_url"), url),
      el("p", {}, `${this.t("walladmin.token")}: `, el("code", { id: "walladmin-token" }, pairing.token)),
      el(
        "div",
        { className: "actions" },
        this.button("walladmin-copy", this.t("walladmin.copy"), () => this.copy()),
        this.button("walladmin-dismiss", this.t("walladmin.dismiss"), () => {
          this.pairing = null;
          this.render();
        }),
      ),
    );
  }

  render() {
    if (!this.allowed) return;
    const heading = this.region.querySelector("h2");
    if (heading) heading.textContent = this.t("walladmin.title");
    const create = el(
      "form",
      { id: "walladmin-create", className: "walladmin-form", noValidate: true },
      el("h4", {}, this.t("walladmin.create")),
      this.input("walladmin-new-name", this.t("walladmin.name"), { maxLength: 64, required: true, autocomplete: "off", spellcheck: false, autocapitalize: "none" }),
      this.input("walladmin-new-title", this.t("walladmin.wall_title"), { maxLength: 80 }),
      this.input("walladmin-new-rows", this.t("walladmin.rows"), { type: "number", min: 1, max: 8, required: true }, "2"),
      this.input("walladmin-new-columns", this.t("walladmin.columns"), { type: "number", min: 1, max: 8, required: true }, "3"),
      el("button", { type: "submit", id: "walladmin-create-submit" }, this.t("walladmin.create_submit")),
    );
    create.addEventListener("submit", (event) => this.create(event));
    keepingFocus(this.root, () =>
      this.root.replaceChildren(
        el("p", { id: "walladmin-result", role: "status", className: "result", dataset: { tone: this.tone } }, this.tone === "bad" ? el("span", { "aria-hidden": "true" }, "✕ ") : this.tone === "ok" ? el("span", { "aria-hidden": "true" }, "✓ ") : null, this.message),
        this.pairing ? this.pairingBox() : null,
        el("h3", {}, this.t("walladmin.walls")),
        this.walls.length
          ? el("ul", { id: "walladmin-walls", className: "walladmin-walls" }, this.walls.map((wall) => this.wallItem(wall)))
          : el("p", { className: "muted" }, this.t("walladmin.none")),
        create,
      ),
    );
  }
}

/** Mount the wall administration into ``root`` (the console calls refresh after sign-in). */
export function mount(root, ctx) {
  const admin = new WallAdmin(root, ctx);
  return { refresh: () => admin.refresh() };
}
