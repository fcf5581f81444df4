// Labels of the technician page in Bahasa Indonesia and English; the language follows the console's.

import { lang, onLangChange, setLang } from "../js/i18n.js";

const STRINGS = {
  id: {
    skip: "Langsung ke isi",
    title: "Perangkat",
    signed_out: "Masuk dulu di konsol.",
    to_console: "Ke konsol",
    "list.title": "Perangkat",
    "filter.kind": "Jenis",
    "filter.site": "Lokasi",
    "filter.state": "Keadaan",
    "filter.all": "semua",
    "col.device": "Perangkat",
    "col.kind": "Jenis",
    "col.site": "Lokasi",
    "col.state": "Keadaan",
    "col.reason": "Sebab",
    "col.seen": "Terakhir terdengar",
    "state.online": "daring",
    "state.degraded": "menurun",
    "state.offline": "luring",
    "state.unknown": "belum diketahui",
    "alarms.title": "Alarm aktif",
    "alarms.empty": "Tidak ada alarm aktif.",
    "alarm.ack": "Tandai diterima",
    "alarm.acked": "Diterima oleh {who}",
    "alarm.escalated": "Dinaikkan ke supervisor",
    "alarm.times": "{n}×",
    "detail.figures": "Angka",
    "detail.commands": "Perintah",
    "detail.alarms": "Alarm",
    "detail.events": "Peristiwa terbaru",
    "detail.no_commands": "Jenis ini tidak menerima perintah.",
    "detail.no_alarms": "Tidak ada alarm aktif.",
    "detail.no_figures": "Belum ada angka.",
    "chart.downsampled": "rata-rata per {width}, pita min–maks",
    "detail.pending": "menunggu: {state}",
    "fact.kind": "Jenis",
    "fact.site": "Lokasi",
    "fact.adapter": "Adaptor",
    "fact.seen": "Terakhir terdengar",
    "fact.tags": "Label",
    "fact.rejected": "Pesan ditolak",
    "command.sent": "Perintah {command} dikirim…",
    "command.ok": "{command}: berhasil",
    "command.failed": "{command}: gagal ({error})",
    "counts": "{shown} dari {total} perangkat",
    "live.open": "Langsung: tersambung",
    "live.connecting": "Langsung: menyambung…",
    "live.closed": "Langsung: terputus",
    never: "belum pernah",
    "limit.above": "batas > {v}",
    "limit.below": "batas < {v}",
  },
  en: {
    skip: "Skip to content",
    title: "Devices",
    signed_out: "Sign in on the console first.",
    to_console: "To the console",
    "list.title": "Devices",
    "filter.kind": "Kind",
    "filter.site": "Site",
    "filter.state": "State",
    "filter.all": "all",
    "col.device": "Device",
    "col.kind": "Kind",
    "col.site": "Site",
    "col.state": "State",
    "col.reason": "Reason",
    "col.seen": "Last heard",
    "state.online": "online",
    "state.degraded": "degraded",
    "state.offline": "offline",
    "state.unknown": "unknown",
    "alarms.title": "Active alarms",
    "alarms.empty": "No active alarms.",
    "alarm.ack": "Acknowledge",
    "alarm.acked": "Acknowledged by {who}",
    "alarm.escalated": "Escalated to the supervisor",
    "alarm.times": "{n}×",
    "detail.figures": "Figures",
    "detail.commands": "Commands",
    "detail.alarms": "Alarms",
    "detail.events": "Recent events",
    "detail.no_commands": "This kind accepts no commands.",
    "detail.no_alarms": "No active alarms.",
    "detail.no_figures": "No figures yet.",
    "chart.downsampled": "average per {width}, band min–max",
    "detail.pending": "pending: {state}",
    "fact.kind": "Kind",
    "fact.site": "Site",
    "fact.adapter": "Adapter",
    "fact.seen": "Last heard",
    "fact.tags": "Tags",
    "fact.rejected": "Rejected messages",
    "command.sent": "Command {command} sent…",
    "command.ok": "{command}: done",
    "command.failed": "{command}: failed ({error})",
    "counts": "{shown} of {total} devices",
    "live.open": "Live: connected",
    "live.connecting": "Live: connecting…",
    "live.closed": "Live: disconnected",
    never: "never",
    "limit.above": "limit > {v}",
    "limit.below": "limit < {v}",
  },
};

/** Translate a key of this page. */
export function dt(key, vars = {}) {
  const text = STRINGS[lang()]?.[key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

/** Fill every [data-dev] element and the language buttons. */
export function translatePage(root = document) {
  document.documentElement.lang = lang();
  for (const element of root.querySelectorAll("[data-dev]")) {
    element.textContent = dt(element.dataset.dev);
  }
  for (const button of root.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang()));
  }
}

export { onLangChange, setLang };
