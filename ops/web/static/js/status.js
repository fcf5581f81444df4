// The hub status panel: a snapshot from /api/v1/hub/status, then kept current from live events.

import { t } from "./i18n.js";

const TONES = { running: "ok", starting: "warn", backoff: "warn", failed: "bad", stopped: "bad" };
const SYMBOLS = { ok: "●", warn: "◐", bad: "✕" };

export class StatusPanel {
  constructor(root) {
    this.root = root;
    this.snapshot = null;
    this.adapters = new Map();
    this.receivedAt = 0;
    this.ticker = null;
  }

  /** Replace everything with a fresh snapshot. */
  show(snapshot) {
    this.snapshot = snapshot;
    this.receivedAt = performance.now();
    this.adapters = new Map(snapshot.adapters.map((adapter) => [adapter.name, adapter]));
    this.render();
    clearInterval(this.ticker);
    this.ticker = setInterval(() => this.renderUptime(), 1000);
  }

  /** Apply one live event; returns true if it was about the hub's status. */
  apply(event) {
    if (!this.snapshot) return false;
    if (event.topic === "hub.adapter.status") {
      this.adapters.set(event.payload.name, event.payload);
      this.renderAdapters();
      return true;
    }
    if (event.topic === "hub.readiness") {
      this.snapshot.ready = event.payload.ready;
      this.snapshot.checks = event.payload.checks;
      this.renderReadiness();
      return true;
    }
    return false;
  }

  clear() {
    clearInterval(this.ticker);
    this.snapshot = null;
  }

  render() {
    this.renderReadiness();
    this.renderUptime();
    const services = this.snapshot.services;
    this.root.querySelector("#services").textContent =
      `${t("database")}: ${t(services.database)} · ${t("mqtt")}: ${t(services.mqtt)}`;
    this.renderAdapters();
  }

  renderReadiness() {
    const { ready, checks } = this.snapshot;
    this.root.querySelector("#ready").replaceChildren(mark(ready ? "ok" : "bad", t(ready ? "yes" : "no")));
    const list = this.root.querySelector("#checks");
    list.replaceChildren(
      ...Object.entries(checks).map(([name, ok]) => {
        const item = document.createElement("li");
        item.append(`${t(name)}: `, mark(ok ? "ok" : "bad", t(ok ? "ok" : "down")));
        return item;
      }),
    );
  }

  renderUptime() {
    if (!this.snapshot) return;
    const seconds = this.snapshot.uptime_seconds + (performance.now() - this.receivedAt) / 1000;
    this.root.querySelector("#uptime").textContent = formatDuration(seconds);
  }

  renderAdapters() {
    const body = this.root.querySelector("#adapters");
    const rows = [...this.adapters.values()]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((adapter) => {
        const row = document.createElement("tr");
        const name = document.createElement("th");
        name.scope = "row";
        name.textContent = adapter.name;
        const state = document.createElement("td");
        state.append(mark(TONES[adapter.state] ?? "warn", t(`state.${adapter.state}`)));
        const restarts = document.createElement("td");
        restarts.textContent = String(adapter.restarts);
        const detail = document.createElement("td");
        detail.textContent = adapter.detail;
        row.append(name, state, restarts, detail);
        return row;
      });
    if (rows.length === 0) {
      const row = document.createElement("tr");
      const cell = document.createElement("td");
      cell.colSpan = 4;
      cell.className = "muted";
      cell.textContent = t("adapter.none");
      row.append(cell);
      rows.push(row);
    }
    body.replaceChildren(...rows);
  }
}

/** A state shown by symbol and word, coloured only as a hint. */
export function mark(tone, text) {
  const span = document.createElement("span");
  span.className = "mark";
  span.dataset.tone = tone;
  const symbol = document.createElement("span");
  symbol.setAttribute("aria-hidden", "true");
  symbol.textContent = SYMBOLS[tone];
  span.append(symbol, text);
  return span;
}

function formatDuration(total) {
  const seconds = Math.floor(total);
  const days = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  const clock = `${pad(hours)}:${pad(minutes)}:${pad(seconds % 60)}`;
  return days > 0 ? `${days}d ${clock}` : clock;
}
