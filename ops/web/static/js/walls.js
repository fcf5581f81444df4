// The console's wall control: pick a wall and a tile, push the selected case, the map view or a
// camera to it, and recall or save presets (operators and supervisors). The wall's screens
// change through the bus.

import * as api from "./api.js";
import { t } from "./i18n.js";
import { el } from "./ui.js";

const CHOICE_KEY = "posko.wall";

function tileLabel(tile, store) {
  if (tile.title) return tile.title;
  if (tile.kind === "case") return store.cases.get(String(tile.case_id))?.number ?? `#${tile.case_id}`;
  return t(`kind.${tile.kind}`);
}

export class WallControl {
  /**
   * @param {HTMLElement} root
   * @param {object} ctx  store, role, selectedCase(), mapView(), mapLayers(), selectedCamera()
   */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.walls = new Map();
    this.presets = [];
    this.wall = null;
    this.tile = 0;
    this.message = "";
    this.tone = "";
  }

  async load() {
    const body = await api.api("GET", "/api/v1/walls");
    this.walls = new Map(body.walls.map((wall) => [wall.name, wall]));
    let choice = null;
    try {
      choice = localStorage.getItem(CHOICE_KEY);
    } catch {
      // Not remembered.
    }
    this.wall = this.walls.has(choice) ? choice : (this.walls.keys().next().value ?? null);
    await this.loadPresets();
    this.render();
  }

  async loadPresets() {
    this.presets = this.wall ? (await api.api("GET", `/api/v1/walls/${this.wall}/presets`)).presets : [];
  }

  /** A live event: a wall changed somewhere (this console or another). */
  apply(message) {
    if (message.topic !== "wall.changed") return;
    const wall = message.payload;
    if (wall.deleted) this.walls.delete(wall.name);
    else this.walls.set(wall.name, wall);
    if (this.wall === wall.name && wall.deleted) this.wall = this.walls.keys().next().value ?? null;
    this.render();
  }

  current() {
    return this.wall ? this.walls.get(this.wall) : null;
  }

  selectTile(index) {
    const wall = this.current();
    if (!wall || index < 0 || index >= wall.rows * wall.columns) return;
    this.tile = index;
    this.render();
  }

  async choose(name) {
    this.wall = name;
    this.tile = 0;
    try {
      localStorage.setItem(CHOICE_KEY, name);
    } catch {
      // Not remembered.
    }
    await this.loadPresets();
    this.render();
  }

  async push(tile) {
    const wall = this.current();
    if (!wall) return;
    await this.run(
      () => api.api("PUT", `/api/v1/walls/${wall.name}/tiles/${this.tile}`, tile),
      () => t("wall.pushed", { index: this.tile + 1, wall: wall.title || wall.name }),
    );
  }

  async pushCase() {
    const item = this.ctx.selectedCase();
    if (!item) return this.say(t("wall.no_case"), "bad");
    return this.push({ kind: "case", case_id: Number(item.id), title: `${item.number}` });
  }

  async pushMap() {
    const view = this.ctx.mapView();
    return this.push({ kind: "map", ...view, layers: this.ctx.mapLayers?.() ?? ["cases", "units", "alerts", "centers", "cameras", "devices"] });
  }

  async pushCamera() {
    const camera = this.ctx.selectedCamera();
    if (!camera) return this.say(t("wall.no_camera"), "bad");
    return this.push({ kind: "camera", device_id: String(camera.id), title: camera.name ?? String(camera.id) });
  }

  async recall() {
    const wall = this.current();
    const preset = this.root.querySelector("#preset-select")?.value;
    if (!wall || !preset) return;
    await this.run(
      () => api.api("POST", `/api/v1/walls/${wall.name}/presets/${preset}/recall`),
      () => t("wall.recalled", { preset, wall: wall.title || wall.name }),
    );
  }

  async save() {
    const wall = this.current();
    const input = this.root.querySelector("#preset-name");
    const name = input?.value.trim().toLowerCase();
    if (!wall || !name) return;
    await this.run(
      () => api.api("POST", `/api/v1/walls/${wall.name}/presets`, { name }),
      () => t("wall.saved", { preset: name }),
    );
    input.value = "";
    await this.loadPresets();
    this.render();
  }

  async run(call, success) {
    try {
      const result = await call();
      if (result?.tiles) this.walls.set(result.name, result);
      this.say(success(), "ok");
    } catch (error) {
      if (error.status !== 401) this.say(t("wall.error", { message: error.message }), "bad");
    }
  }

  say(text, tone) {
    this.message = text;
    this.tone = tone;
    this.render();
  }

  render() {
    const root = this.root;
    const focused = document.activeElement?.id;
    const typed = root.querySelector("#preset-name")?.value ?? "";
    if (!this.walls.size) {
      root.replaceChildren(el("p", { className: "muted" }, t("wall.none")));
      return;
    }
    if (!this.walls.has(this.wall)) {
      this.wall = this.walls.keys().next().value;
      this.tile = 0;
      this.loadPresets().then(() => this.render(), () => {});
    }
    const wall = this.current();
    const select = el(
      "select",
      { id: "wall-select" },
      [...this.walls.values()].map((w) => el("option", { value: w.name, selected: w.name === this.wall }, w.title || w.name)),
    );
    select.addEventListener("change", () => this.choose(select.value));
    const grid = el(
      "div",
      { className: "tile-picker", role: "radiogroup", "aria-label": t("wall.tile") },
      wall.tiles.map((tile, index) => {
        const button = el(
          "button",
          {
            type: "button",
            role: "radio",
            className: "tile-choice",
            "aria-checked": String(index === this.tile),
            dataset: { index: String(index), kind: tile.kind },
          },
          el("span", { className: "tile-number" }, String(index + 1)),
          el("span", { className: "tile-kind" }, tileLabel(tile, this.ctx.store)),
        );
        button.addEventListener("click", () => this.selectTile(index));
        return button;
      }),
    );
    grid.dataset.columns = String(wall.columns);
    grid.classList.add(`columns-${wall.columns}`);
    const canPush = this.ctx.role === "operator" || this.ctx.role === "supervisor";
    const action = (id, label, handler, hint) => {
      const button = el("button", { type: "button", id, disabled: !canPush }, t(label), hint ? el("kbd", {}, hint) : null);
      button.addEventListener("click", handler);
      return button;
    };
    const presetSelect = el(
      "select",
      { id: "preset-select", "aria-label": t("wall.presets") },
      this.presets.map((p) => el("option", { value: p.name }, p.name)),
    );
    const children = [
      el("div", { className: "wall-choose" }, el("label", { htmlFor: "wall-select" }, t("wall.choose")), select, el("a", { href: `/wall/${wall.name}`, target: "_blank", rel: "noopener" }, t("wall.open"))),
      grid,
      el(
        "div",
        { className: "actions" },
        action("push-case", "wall.push_case", () => this.pushCase(), "W"),
        action("push-map", "wall.push_map", () => this.pushMap(), "M"),
        action("push-camera", "wall.push_camera", () => this.pushCamera()),
      ),
      el(
        "div",
        { className: "actions presets" },
        el("label", { htmlFor: "preset-select" }, t("wall.presets")),
        presetSelect,
        action("preset-recall", "wall.recall", () => this.recall()),
      ),
    ];
    if (canPush) {
      const input = el("input", { id: "preset-name", maxLength: 64, pattern: "[a-z0-9][a-z0-9_-]*", placeholder: t("wall.preset_name"), "aria-label": t("wall.preset_name"), value: typed });
      input.dataset.draft = "";
      children.push(el("div", { className: "actions presets" }, input, action("preset-save", "wall.save", () => this.save())));
    }
    children.push(el("p", { id: "wall-result", role: "status", className: "result", dataset: { tone: this.tone } }, this.message));
    root.replaceChildren(...children);
    if (focused && root.querySelector(`#${focused}`)) root.querySelector(`#${focused}`).focus();
  }
}
