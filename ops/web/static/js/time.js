// Dates and times in the room's time zone (WIB, WITA or WIT), whatever the browser's own zone.

import { lang, t } from "./i18n.js";

let zone = "Asia/Jakarta";
let label = "WIB";

/** Use the hub's configured zone (from /api/v1/console/settings). */
export function setZone(timeZone, zoneLabel) {
  try {
    new Intl.DateTimeFormat("en", { timeZone });
    zone = timeZone;
    label = zoneLabel || timeZone;
  } catch {
    // An unknown zone keeps the default rather than showing browser-local times.
  }
}

export function zoneLabel() {
  return label;
}

function locale() {
  return lang() === "id" ? "id-ID" : "en-GB";
}

/** "14:05" in the room's zone. */
export function formatTime(value, seconds = false) {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  return new Intl.DateTimeFormat(locale(), {
    timeZone: zone,
    hour: "2-digit",
    minute: "2-digit",
    ...(seconds ? { second: "2-digit" } : {}),
    hourCycle: "h23",
  }).format(date);
}

/** "23 Nov 14:05 WIB" in the room's zone. */
export function formatDateTime(value) {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  const text = new Intl.DateTimeFormat(locale(), {
    timeZone: zone,
    day: "numeric",
    month: "short",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(date);
  return `${text} ${label}`;
}

/** "5 min ago" from now. */
export function ago(value) {
  const ms = Date.now() - new Date(value).getTime();
  if (!Number.isFinite(ms)) return "";
  const minutes = Math.floor(ms / 60000);
  if (minutes < 1) return t("ago.now");
  if (minutes < 60) return t("ago.min", { n: minutes });
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return t("ago.hour", { n: hours });
  return t("ago.day", { n: Math.floor(hours / 24) });
}
