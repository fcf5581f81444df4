// The case panel: the call-taker form, and the selected case's detail — history, notes,
// transitions, duplicate links and the supervisor's agency override. Mounted by the console
// into [data-panel="cases"]; the queue beside it selects the case.

import { el, keepingFocus, priorityBadge } from "./ui.js";

const STRINGS = {
  id: {
    "cases.new": "Laporan baru",
    "cases.form.title": "Laporan penelepon",
    "cases.form.category": "Kategori",
    "cases.form.priority": "Prioritas",
    "cases.form.priorityDefault": "bawaan kategori",
    "cases.form.titleField": "Judul",
    "cases.form.description": "Uraian",
    "cases.form.address": "Alamat",
    "cases.form.region": "Wilayah",
    "cases.form.lat": "Lintang",
    "cases.form.lon": "Bujur",
    "cases.form.reporter": "Nama pelapor",
    "cases.form.contact": "Kontak pelapor",
    "cases.form.submit": "Simpan kasus",
    "cases.form.cancel": "Batal",
    "cases.form.saved": "Kasus {number} tersimpan.",
    "cases.error": "Gagal: {message}",
    "cases.history": "Riwayat",
    "cases.notes": "Catatan",
    "cases.note.add": "Tambah catatan",
    "cases.note.placeholder": "Tulis catatan…",
    "cases.move": "Ubah status",
    "cases.reason": "Alasan",
    "cases.agency": "Instansi",
    "cases.override": "Alihkan instansi (supervisor)",
    "cases.duplicates": "Duplikat",
    "cases.suspected": "Mungkin duplikat dari kasus #{id}",
    "cases.linkSuggested": "Tautkan ke kasus itu",
    "cases.dismiss": "Bukan duplikat",
    "cases.linkTo": "Tautkan sebagai duplikat dari kasus nomor id",
    "cases.link": "Tautkan",
    "cases.unlink": "Lepas tautan",
    "cases.parent": "Duplikat dari kasus #{id}",
    "cases.children": "Kasus duplikat di bawahnya",
    "cases.reporter": "Pelapor",
    "cases.anonymous": "anonim",
    "cases.description": "Uraian",
    "cases.reasonNeeded": "Langkah ini perlu alasan.",
    "cases.to.triaged": "Pilah",
    "cases.to.assigned": "Tugaskan",
    "cases.to.in_progress": "Mulai tangani",
    "cases.to.resolved": "Selesai",
    "cases.to.closed": "Tutup",
    "cases.to.rejected": "Tolak",
    "cases.to.reopened": "Buka ulang",
    "cases.to.bounce": "Kembalikan ke pemilahan",
  },
  en: {
    "cases.new": "New report",
    "cases.form.title": "Caller's report",
    "cases.form.category": "Category",
    "cases.form.priority": "Priority",
    "cases.form.priorityDefault": "category default",
    "cases.form.titleField": "Title",
    "cases.form.description": "Description",
    "cases.form.address": "Address",
    "cases.form.region": "Region",
    "cases.form.lat": "Latitude",
    "cases.form.lon": "Longitude",
    "cases.form.reporter": "Reporter name",
    "cases.form.contact": "Reporter contact",
    "cases.form.submit": "Save case",
    "cases.form.cancel": "Cancel",
    "cases.form.saved": "Case {number} saved.",
    "cases.error": "Failed: {message}",
    "cases.history": "History",
    "cases.notes": "Notes",
    "cases.note.add": "Add note",
    "cases.note.placeholder": "Write a note…",
    "cases.move": "Change status",
    "cases.reason": "Reason",
    "cases.agency": "Agency",
    "cases.override": "Give to another agency (supervisor)",
    "cases.duplicates": "Duplicates",
    "cases.suspected": "Possibly a duplicate of case #{id}",
    "cases.linkSuggested": "Link to that case",
    "cases.dismiss": "Not a duplicate",
    "cases.linkTo": "Link as a duplicate of case id",
    "cases.link": "Link",
    "cases.unlink": "Unlink",
    "cases.parent": "Duplicate of case #{id}",
    "cases.children": "Duplicates linked under it",
    "cases.reporter": "Reporter",
    "cases.anonymous": "anonymous",
    "cases.description": "Description",
    "cases.reasonNeeded": "This step needs a reason.",
    "cases.to.triaged": "Triage",
    "cases.to.assigned": "Assign",
    "cases.to.in_progress": "Start work",
    "cases.to.resolved": "Resolve",
    "cases.to.closed": "Close",
    "cases.to.rejected": "Reject",
    "cases.to.reopened": "Reopen",
    "cases.to.bounce": "Bounce back to triage",
  },
};

// The life cycle as ops/cases/lifecycle.py has it; the hub refuses anything else with a 409.
const NEXT = {
  new: ["triaged", "assigned", "rejected"],
  triaged: ["assigned", "rejected"],
  assigned: ["in_progress", "resolved", "triaged"],
  in_progress: ["resolved", "triaged"],
  resolved: ["closed", "reopened"],
  closed: ["reopened"],
  rejected: ["closed", "reopened"],
  reopened: ["triaged", "assigned", "rejected"],
};
const NEEDS_REASON = new Set(["rejected", "reopened"]);
const OWNED = new Set(["assigned", "in_progress"]);
const PRIORITIES = ["critical", "high", "medium", "low"];

class CasePanel {
  constructor(region, context) {
    this.region = region;
    this.ctx = context;
    this.t = context.i18n.t;
    this.catalogue = { categories: [], agencies: [] };
    this.detail = null;
    this.message = null;
    this.formOpen = false;
    this.form = null; // kept across renders, so a live update never wipes a call being typed
    this.loading = 0;
  }

  async start() {
    this.ctx.i18n.addStrings("id", STRINGS.id);
    this.ctx.i18n.addStrings("en", STRINGS.en);
    this.unsubscribe = [
      this.ctx.selection.onCase((id) => this.load(id)),
      this.ctx.live.subscribe("case.", (message) => {
        if (this.detail && String(message.payload?.id) === String(this.detail.id)) this.load(this.detail.id);
      }),
      this.ctx.i18n.onLangChange?.(() => this.render()),
    ];
    await this.refresh();
  }

  async refresh() {
    try {
      const [categories, agencies] = await Promise.all([
        this.ctx.api.api("GET", "/api/v1/case-categories"),
        this.ctx.api.api("GET", "/api/v1/agencies"),
      ]);
      this.catalogue = { categories: categories.categories, agencies: agencies.agencies };
    } catch {
      // Keep the last catalogue; the form still works with what it had.
    }
    // Never load "nothing" here: that would cancel a case being opened meanwhile.
    const id = this.ctx.selection.case() ?? this.detail?.id ?? null;
    if (id === null) this.render();
    else await this.load(id);
  }

  async load(id) {
    const ticket = ++this.loading;
    if (id === null || id === undefined) {
      this.detail = null;
      this.render();
      return;
    }
    try {
      const detail = await this.ctx.api.api("GET", `/api/v1/cases/${encodeURIComponent(id)}`);
      if (ticket === this.loading) this.detail = detail;
    } catch (error) {
      if (ticket === this.loading) {
        this.detail = null;
        this.message = { error: true, text: this.t("cases.error", { message: error.message }) };
      }
    }
    if (ticket === this.loading) this.render();
  }

  /** Run a change; ``work`` may resolve to the id of the case to show next. */
  async act(work) {
    this.message = null;
    let next;
    try {
      next = await work();
    } catch (error) {
      this.message = { error: true, text: this.t("cases.error", { message: error.message }) };
      this.render();
      return false;
    }
    // A new case is shown next; otherwise the current one again, as the hub now has it.
    const id = typeof next === "number" ? next : this.detail?.id;
    if (id !== undefined) await this.load(id);
    else this.render();
    return true;
  }

  get canAct() {
    const role = this.ctx.user?.role;
    return role === "operator" || role === "supervisor";
  }

  label(category) {
    const found = this.catalogue.categories.find((c) => c.code === category);
    if (!found) return category;
    return this.ctx.i18n.lang?.() === "en" ? found.label_en : found.label_id;
  }

  render() {
    const t = this.t;
    // What is being typed survives a re-render (a live update of the case shown, a refresh).
    const drafts = {};
    for (const input of this.region.querySelectorAll(".case-detail [name]")) drafts[input.name] = input.value;
    const shown = this.region.querySelector(".case-detail")?.dataset.case;
    const parts = [];
    if (this.canAct) {
      parts.push(
        el("button", { type: "button", className: "quiet", dataset: { action: "new-case" }, onclick: () => {
          this.formOpen = !this.formOpen;
          if (!this.formOpen) this.form = null;
          this.render();
        } }, t("cases.new")),
      );
      if (this.formOpen) {
        this.form = this.form ?? this.callTakerForm();
        parts.push(this.form);
      }
    }
    if (this.message) {
      parts.push(el("p", { className: this.message.error ? "error" : "note", role: this.message.error ? "alert" : "status" }, this.message.text));
    }
    if (this.detail) parts.push(this.caseView(this.detail));
    else if (!this.formOpen) parts.push(el("p", { className: "muted" }, t("case.none")));
    const sameCase = Boolean(this.detail) && String(this.detail.id) === shown;
    keepingFocus(
      this.region,
      () => {
        this.region.replaceChildren(...parts);
        if (!sameCase) return;
        for (const input of this.region.querySelectorAll(".case-detail [name]")) {
          if (input.name in drafts && input.tagName !== "SELECT") input.value = drafts[input.name];
        }
      },
      { byKey: sameCase },
    );
  }

  callTakerForm() {
    const t = this.t;
    const field = (name, label, input) =>
      el("label", { className: "cases-field" }, el("span", {}, t(label)), Object.assign(input, { name }));
    const categories = el("select", { required: true },
      el("option", { value: "" }, "—"),
      this.catalogue.categories.filter((c) => c.active).map((c) => el("option", { value: c.code }, this.label(c.code))));
    const priorities = el("select", {},
      el("option", { value: "" }, t("cases.form.priorityDefault")),
      PRIORITIES.map((p) => el("option", { value: p }, t(`priority.${p}`))));
    const form = el(
      "form",
      { className: "cases-form", dataset: { form: "call-taker" }, noValidate: true },
      el("h3", {}, t("cases.form.title")),
      field("category", "cases.form.category", categories),
      field("priority", "cases.form.priority", priorities),
      field("title", "cases.form.titleField", el("input", { maxLength: 200 })),
      field("description", "cases.form.description", el("textarea", { rows: 4, maxLength: 10000 })),
      field("address", "cases.form.address", el("input", { maxLength: 300 })),
      field("region", "cases.form.region", el("input", { maxLength: 300 })),
      field("lat", "cases.form.lat", el("input", { inputMode: "decimal" })),
      field("lon", "cases.form.lon", el("input", { inputMode: "decimal" })),
      field("reporter_name", "cases.form.reporter", el("input", { maxLength: 300 })),
      field("reporter_contact", "cases.form.contact", el("input", { maxLength: 300 })),
      el("button", { type: "submit" }, t("cases.form.submit")),
      el("button", { type: "button", className: "quiet", onclick: () => {
        this.formOpen = false;
        this.form = null;
        this.render();
      } }, t("cases.form.cancel")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const body = { channel: "console" };
      for (const [key, value] of new FormData(form).entries()) {
        const text = String(value).trim();
        if (!text) continue;
        body[key] = key === "lat" || key === "lon" ? Number(text.replace(",", ".")) : text;
      }
      this.act(async () => {
        const created = await this.ctx.api.api("POST", "/api/v1/cases", body);
        this.formOpen = false;
        this.form = null;
        this.message = { error: false, text: t("cases.form.saved", { number: created.number }) };
        this.ctx.selection.selectCase(created.id);
        return created.id;
      });
    });
    return form;
  }

  caseView(item) {
    const t = this.t;
    const time = this.ctx.time;
    const facts = [
      ["case.status", t(`status.${item.status}`) + (item.status_reason ? ` — ${item.status_reason}` : "")],
      ["case.category", this.label(item.category)],
      ["case.channel", item.channel],
      ["case.agency", item.agency ?? "—"],
      ["case.created", time.formatDateTime(item.created_at)],
      ["case.sla", time.formatDateTime(item.sla_due_at)],
      ["case.location", item.lat != null ? `${item.lat.toFixed(5)}, ${item.lon.toFixed(5)}` : "—"],
      ["cases.form.address", [item.address, item.region].filter(Boolean).join(" · ") || "—"],
      ["cases.reporter", item.anonymous ? t("cases.anonymous") : [item.reporter_name, item.reporter_contact].filter(Boolean).join(" · ") || "—"],
    ];
    return el(
      "article",
      { className: "case-detail", dataset: { case: String(item.id), status: item.status } },
      el("p", { className: "case-head" }, priorityBadge(item.priority), el("strong", { className: "number" }, item.number)),
      el("p", { className: "case-title" }, item.title),
      item.sla_breached_at || item.overdue
        ? el("p", { className: "sla-breached" }, el("span", { "aria-hidden": "true" }, "⚠ "), t("case.breached"))
        : null,
      el("dl", { className: "facts" }, facts.map(([key, value]) => el("div", {}, el("dt", {}, t(key)), el("dd", {}, value)))),
      item.description ? el("p", { className: "case-description" }, item.description) : null,
      this.canAct ? this.transitions(item) : null,
      this.duplicates(item),
      this.notes(item),
      this.history(item),
    );
  }

  transitions(item) {
    const t = this.t;
    const reason = el("input", { name: "reason", maxLength: 300, placeholder: t("cases.reason") });
    const agencies = el("select", { name: "agency" },
      this.catalogue.agencies.map((a) => el("option", { value: a.code, selected: a.code === item.agency }, a.code)));
    const buttons = (NEXT[item.status] ?? []).map((to) => {
      const bounce = to === "triaged" && OWNED.has(item.status);
      return el("button", { type: "button", dataset: { to }, onclick: () => {
        const needs = NEEDS_REASON.has(to) || bounce;
        const body = { to };
        if (reason.value.trim()) body.reason = reason.value.trim();
        if (needs && !body.reason) {
          this.message = { error: true, text: t("cases.reasonNeeded") };
          this.render();
          return;
        }
        if (to === "assigned") body.agency = agencies.value;
        this.act(async () => {
          await this.ctx.api.api("POST", `/api/v1/cases/${item.id}/transitions`, body);
          reason.value = "";
        });
      } }, t(bounce ? "cases.to.bounce" : `cases.to.${to}`));
    });
    const parts = [el("h3", {}, t("cases.move")), el("div", { className: "cases-actions" }, buttons), reason,
      el("label", { className: "cases-field" }, el("span", {}, t("cases.agency")), agencies)];
    if (this.ctx.user?.role === "supervisor") {
      parts.push(el("button", { type: "button", className: "quiet", dataset: { action: "override" }, onclick: () => {
        if (!reason.value.trim()) {
          this.message = { error: true, text: t("cases.reasonNeeded") };
          this.render();
          return;
        }
        this.act(async () => {
          await this.ctx.api.api("PUT", `/api/v1/cases/${item.id}/agency`, { agency: agencies.value, reason: reason.value.trim() });
          reason.value = "";
        });
      } }, t("cases.override")));
    }
    return el("section", { className: "cases-transitions" }, parts);
  }

  duplicates(item) {
    const t = this.t;
    const parts = [el("h3", {}, t("cases.duplicates"))];
    const open = (id) => el("button", { type: "button", className: "link", onclick: () => this.ctx.selection.selectCase(id) }, `#${id}`);
    if (item.parent_id) {
      parts.push(el("p", {}, t("cases.parent", { id: item.parent_id }), " ", open(item.parent_id)));
      if (this.canAct) parts.push(el("button", { type: "button", className: "quiet", dataset: { action: "unlink" }, onclick: () => this.act(() => this.ctx.api.api("DELETE", `/api/v1/cases/${item.id}/parent`)) }, t("cases.unlink")));
    } else if (item.duplicate_of) {
      parts.push(el("p", { className: "note" }, t("cases.suspected", { id: item.duplicate_of }), " ", open(item.duplicate_of)));
      if (this.canAct) {
        parts.push(
          el("button", { type: "button", dataset: { action: "link-suggested" }, onclick: () => this.act(() => this.ctx.api.api("PUT", `/api/v1/cases/${item.id}/parent`, { parent_id: item.duplicate_of })) }, t("cases.linkSuggested")),
          el("button", { type: "button", className: "quiet", onclick: () => this.act(() => this.ctx.api.api("DELETE", `/api/v1/cases/${item.id}/parent`)) }, t("cases.dismiss")),
        );
      }
    } else if (this.canAct && !item.children) {
      const target = el("input", { name: "parent_id", inputMode: "numeric", size: 8 });
      parts.push(el("form", { className: "cases-inline", onsubmit: (event) => {
        event.preventDefault();
        const parent = Number(target.value);
        if (Number.isInteger(parent) && parent > 0) this.act(() => this.ctx.api.api("PUT", `/api/v1/cases/${item.id}/parent`, { parent_id: parent }));
      } }, el("label", {}, t("cases.linkTo"), " ", target), el("button", { type: "submit" }, t("cases.link"))));
    }
    if (item.duplicates?.length) {
      parts.push(el("p", {}, t("cases.children")), el("ul", { className: "cases-children" },
        item.duplicates.map((child) => el("li", {}, open(child.id), ` ${child.number} — ${child.title}`))));
    }
    return el("section", {}, parts);
  }

  notes(item) {
    const t = this.t;
    const parts = [el("h3", {}, t("cases.notes")), el("ol", { className: "cases-notes" },
      item.notes.map((note) => el("li", {}, el("span", { className: "muted" }, `${this.ctx.time.formatDateTime(note.at)} · ${note.author}: `), note.body)))];
    if (this.canAct) {
      const text = el("textarea", { name: "body", rows: 2, maxLength: 5000, placeholder: t("cases.note.placeholder") });
      parts.push(el("form", { className: "cases-inline", onsubmit: (event) => {
        event.preventDefault();
        const body = text.value.trim();
        if (!body) return;
        this.act(async () => {
          await this.ctx.api.api("POST", `/api/v1/cases/${item.id}/notes`, { body });
          text.value = ""; // sent: not a draft any more
        });
      } }, text, el("button", { type: "submit" }, t("cases.note.add"))));
    }
    return el("section", {}, parts);
  }

  history(item) {
    const describe = (entry) => {
      const after = entry.after ?? {};
      if (entry.action === "transition") return `${this.t(`status.${entry.before?.status}`)} → ${this.t(`status.${after.status}`)}${after.reason ? ` (${after.reason})` : ""}`;
      if (entry.action === "opened") return `${entry.action} · ${after.channel} · ${after.agency ?? "—"}`;
      return entry.action;
    };
    return el("section", {}, el("h3", {}, this.t("cases.history")), el("ol", { className: "cases-history" },
      item.history.map((entry) => el("li", { dataset: { action: entry.action } },
        el("span", { className: "muted" }, `${this.ctx.time.formatDateTime(entry.at)} · ${entry.actor}: `), describe(entry)))));
  }

  stop() {
    for (const off of this.unsubscribe ?? []) off?.();
  }
}

/** Mount the case panel into ``region``; returns the handle the console refreshes. */
export async function mount(region, context) {
  if (!document.querySelector('link[href="/static/css/cases.css"]')) {
    document.head.append(el("link", { rel: "stylesheet", href: "/static/css/cases.css" }));
  }
  const panel = new CasePanel(region, context);
  await panel.start();
  return { refresh: () => panel.refresh(), stop: () => panel.stop() };
}
