// The public report and whistleblower forms (one module; <body data-form> says which).
// Talks only to /api/v1/public/*; never loads anything from elsewhere.

const STRINGS = {
  id: {
    "public.title": "Laporkan kejadian",
    "public.lead": "Laporan Anda diteruskan ke instansi yang berwenang. Simpan kode lacak untuk mengikuti perkembangannya.",
    "public.received": "Laporan diterima. Nomor kasus:",
    "public.code": "Kode lacak Anda (simpan):",
    "public.anonymous": "Ingin melapor secara anonim (whistleblower)?",
    "field.category": "Kategori",
    "field.title": "Judul (opsional)",
    "field.description": "Apa yang terjadi?",
    "field.address": "Alamat / lokasi",
    "field.region": "Kabupaten / kota",
    "field.position": "Koordinat (opsional)",
    "field.name": "Nama (opsional)",
    "field.contact": "Telepon atau email (opsional)",
    "form.locate": "Pakai lokasi saya",
    "form.submit": "Kirim laporan",
    "form.missing": "Pilih kategori dan ceritakan apa yang terjadi.",
    "form.throttled": "Terlalu banyak laporan dari sini. Coba lagi dalam {s} detik.",
    "form.error": "Laporan belum terkirim: {message}",
    "form.field": "Periksa isian “{field}”: {message}",
    "track.title": "Lacak laporan",
    "track.code": "Kode lacak",
    "track.submit": "Lihat status",
    "track.status": "Status",
    "track.unknown": "Kode tidak dikenal.",
    "wb.title": "Laporan anonim (whistleblower)",
    "wb.lead": "Formulir ini tidak menanyakan identitas Anda dan alamat IP Anda tidak disimpan. Jangan tulis nama Anda di laporan bila ingin tetap anonim.",
    "wb.code": "Kode tindak lanjut rahasia Anda. Simpan baik-baik: hanya kode ini yang bisa menambah informasi dan tidak dapat dipulihkan.",
    "wb.follow": "Tindak lanjut",
    "wb.codeLabel": "Kode tindak lanjut",
    "wb.more": "Tambah informasi",
    "wb.send": "Kirim informasi",
    "wb.sent": "Informasi diterima.",
    "status.new": "baru", "status.triaged": "dipilah", "status.assigned": "diteruskan ke instansi",
    "status.in_progress": "sedang ditangani", "status.resolved": "selesai ditangani",
    "status.closed": "ditutup", "status.rejected": "ditolak", "status.reopened": "dibuka kembali",
  },
  en: {
    "public.title": "Report an incident",
    "public.lead": "Your report goes to the agency in charge. Keep the tracking code to follow it.",
    "public.received": "Report received. Case number:",
    "public.code": "Your tracking code (keep it):",
    "public.anonymous": "Want to report anonymously (whistleblower)?",
    "field.category": "Category",
    "field.title": "Title (optional)",
    "field.description": "What happened?",
    "field.address": "Address / place",
    "field.region": "Regency / city",
    "field.position": "Coordinates (optional)",
    "field.name": "Name (optional)",
    "field.contact": "Phone or email (optional)",
    "form.locate": "Use my location",
    "form.submit": "Send report",
    "form.missing": "Choose a category and describe what happened.",
    "form.throttled": "Too many reports from here. Try again in {s} s.",
    "form.error": "The report was not sent: {message}",
    "form.field": "Check “{field}”: {message}",
    "track.title": "Track a report",
    "track.code": "Tracking code",
    "track.submit": "Show status",
    "track.status": "Status",
    "track.unknown": "Unknown code.",
    "wb.title": "Anonymous report (whistleblower)",
    "wb.lead": "This form asks nothing about who you are and your IP address is not stored. Leave your name out of the report to stay anonymous.",
    "wb.code": "Your secret follow-up code. Keep it safe: only this code can add information, and it cannot be recovered.",
    "wb.follow": "Follow up",
    "wb.codeLabel": "Follow-up code",
    "wb.more": "Add information",
    "wb.send": "Send information",
    "wb.sent": "Information received.",
    "status.new": "new", "status.triaged": "triaged", "status.assigned": "passed to the agency",
    "status.in_progress": "in progress", "status.resolved": "resolved",
    "status.closed": "closed", "status.rejected": "rejected", "status.reopened": "reopened",
  },
};

const $ = (selector) => document.querySelector(selector);
const kind = document.body.dataset.form;
let lang = localStorage.getItem("posko.lang") === "en" ? "en" : "id";
let categories = [];
let tracked = null;

function t(key, values = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.id[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

function translate() {
  document.documentElement.lang = lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
  fillCategories();
  if (tracked) showTracked(tracked);
}

async function call(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(data?.error?.message ?? response.statusText);
    error.status = response.status;
    error.field = data?.error?.field ?? null;
    error.retryAfter = response.headers.get("Retry-After");
    throw error;
  }
  return data;
}

function fillCategories() {
  const select = $("#category");
  const chosen = select.value;
  select.replaceChildren(new Option("—", ""));
  for (const category of categories) {
    select.append(new Option(lang === "en" ? category.label_en : category.label_id, category.code));
  }
  select.value = chosen;
}

function explain(error) {
  if (error.status === 429) return t("form.throttled", { s: error.retryAfter ?? "60" });
  if (error.status === 400 && error.field) {
    const label = document.querySelector(`label[for="${error.field}"]`)?.textContent ?? error.field;
    return t("form.field", { field: label, message: error.message });
  }
  return t("form.error", { message: error.message });
}

function number(value) {
  const text = value.trim().replace(",", ".");
  return text === "" ? undefined : Number(text);
}

async function submitReport(event) {
  event.preventDefault();
  const form = event.target;
  const message = $("#form-error");
  message.hidden = true;
  const data = Object.fromEntries(new FormData(form).entries());
  if (!data.category || !data.description.trim()) {
    message.textContent = t("form.missing");
    message.hidden = false;
    return;
  }
  const body = {};
  for (const [key, value] of Object.entries(data)) {
    if (key === "lat" || key === "lon") {
      const parsed = number(value);
      if (parsed !== undefined) body[key] = parsed;
    } else if (value.trim() !== "") {
      body[key] = value.trim();
    }
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const path = kind === "whistleblower" ? "/api/v1/public/whistleblower" : "/api/v1/public/reports";
    const receipt = await call("POST", path, body);
    $("#receipt-number").textContent = receipt.number;
    $("#receipt-code").textContent = receipt.tracking_code ?? receipt.follow_up_code;
    $("#receipt").hidden = false;
    form.hidden = true;
    $("#receipt").scrollIntoView();
  } catch (error) {
    message.textContent = explain(error);
    message.hidden = false;
    if (error.field) document.getElementById(error.field)?.focus();
  } finally {
    button.disabled = false;
  }
}

function showTracked(view) {
  $("#track-status").textContent = t(`status.${view.status}`);
  const list = $("#track-timeline");
  list.replaceChildren();
  for (const step of view.timeline) {
    const item = document.createElement("li");
    item.textContent = `${new Date(step.at).toLocaleString(lang === "en" ? "en-GB" : "id-ID")} — ${t(`status.${step.status}`)}`;
    list.append(item);
  }
  $("#track-result").hidden = false;
}

async function track(event) {
  event.preventDefault();
  const code = $("#track-code").value.trim();
  const message = $("#track-error");
  message.hidden = true;
  $("#track-result").hidden = true;
  tracked = null;
  if (!code) return;
  try {
    tracked = await call("GET", `/api/v1/public/reports/${encodeURIComponent(code)}`);
    showTracked(tracked);
  } catch (error) {
    message.textContent = error.status === 404 ? t("track.unknown") : explain(error);
    message.hidden = false;
  }
}

async function addInformation(event) {
  event.preventDefault();
  const text = $("#more").value.trim();
  if (!text) return;
  const code = $("#track-code").value.trim();
  try {
    await call("POST", `/api/v1/public/reports/${encodeURIComponent(code)}/notes`, { body: text });
    $("#more").value = "";
    $("#more-done").hidden = false;
  } catch (error) {
    $("#track-error").textContent = explain(error);
    $("#track-error").hidden = false;
  }
}

function locate() {
  if (!navigator.geolocation) return;
  navigator.geolocation.getCurrentPosition((position) => {
    $("#lat").value = position.coords.latitude.toFixed(6);
    $("#lon").value = position.coords.longitude.toFixed(6);
  });
}

async function start() {
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => {
      lang = button.dataset.lang;
      localStorage.setItem("posko.lang", lang);
      translate();
    });
  }
  $("#report-form").addEventListener("submit", submitReport);
  $("#track-form").addEventListener("submit", track);
  $("#more-form")?.addEventListener("submit", addInformation);
  $("#locate")?.addEventListener("click", locate);
  translate();
  try {
    categories = (await call("GET", "/api/v1/public/categories")).categories;
  } catch {
    categories = [];
  }
  fillCategories();
  document.body.dataset.ready = "true";
}

start();
