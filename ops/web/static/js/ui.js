// Small DOM helpers shared by the console and the wall: states shown by shape and word, not colour alone.

import { t } from "./i18n.js";

const PRIORITY_SHAPES = { critical: "◆", high: "▲", medium: "●", low: "■" };
const DEVICE_TONES = { online: "ok", degraded: "warn", offline: "bad", unknown: "warn" };
const TONE_SHAPES = { ok: "●", warn: "◐", bad: "✕" };

/** Create an element: el("li", { className: "x", dataset: { id: 1 } }, "text", child). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/** A priority as shape + word, e.g. "▲ high". */
export function priorityBadge(priority) {
  return el(
    "span",
    { className: "badge", dataset: { priority } },
    el("span", { "aria-hidden": "true" }, PRIORITY_SHAPES[priority] ?? "•"),
    ` ${t(`priority.${priority}`)}`,
  );
}

export function priorityShape(priority) {
  return PRIORITY_SHAPES[priority] ?? "•";
}

/** A device state as shape + word. */
export function deviceBadge(state) {
  const tone = DEVICE_TONES[state] ?? "warn";
  return el(
    "span",
    { className: "mark", dataset: { tone } },
    el("span", { "aria-hidden": "true" }, TONE_SHAPES[tone]),
    t(`device.${state ?? "unknown"}`),
  );
}

export function deviceShape(state) {
  return TONE_SHAPES[DEVICE_TONES[state] ?? "warn"];
}

/** Collapse calls to fn into one per animation frame. */
export function throttled(fn) {
  let pending = false;
  return (...args) => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fn(...args);
    });
  };
}

/**
 * A throttled redraw of only what live changes show. ``table`` lists [topic prefix, part names];
 * ``draw(parts)`` gets the parts to redraw at the next frame, or null for everything (a change
 * without a topic, or one the table does not name: a snapshot, the clock, the language).
 */
export function redrawByTopic(table, draw) {
  let parts = new Set(); // null: everything
  const flush = throttled(() => {
    const due = parts;
    parts = new Set();
    draw(due);
  });
  return (topic = null) => {
    const entry = typeof topic === "string" ? table.find(([prefix]) => topic.startsWith(prefix)) : null;
    if (!entry) parts = null;
    else if (parts) for (const part of entry[1]) parts.add(part);
    flush();
  };
}

/**
 * Redraw part of the page and hand the focus (and caret) back to the field that had it.
 *
 * Replacing or re-parenting a focused element blurs it, and the operator's next keystrokes go
 * nowhere; a live update must never do that. The field is found again as the same node (a form
 * kept across renders) or, unless ``byKey`` is false (the redraw shows something else now), by
 * its id, or its name (and value, for a checkbox) inside ``root``.
 */
export function keepingFocus(root, redraw, { byKey = true } = {}) {
  const active = document.activeElement;
  const inside = active && active !== document.body && root.contains(active);
  const key = inside ? focusKey(active) : null;
  const caret = inside && typeof active.selectionStart === "number" ? [active.selectionStart, active.selectionEnd] : null;
  redraw();
  if (!inside || document.activeElement === active) return;
  const target = active.isConnected ? active : byKey && key ? root.querySelector(key) : null;
  if (!target) return;
  target.focus({ preventScroll: true });
  if (caret && typeof target.setSelectionRange === "function") {
    try {
      target.setSelectionRange(...caret);
    } catch {
      // Not a text field after all (a checkbox keeps no caret).
    }
  }
}

function focusKey(node) {
  if (node.id) return `#${CSS.escape(node.id)}`;
  if (!node.name) return null;
  const name = `[name="${CSS.escape(node.name)}"]`;
  return node.type === "checkbox" || node.type === "radio" ? `${name}[value="${CSS.escape(node.value)}"]` : name;
}
