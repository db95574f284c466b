// The abandoned-contacts worklist panel: who hung up in the window and whether the same customer
// was reached again (GET /api/v1/contacts/abandoned, docs/metrics.md). Not reached first (newest
// on top), then reached with the delay. Contact-level data: a key without the right role gets a
// 403 and the panel stays out of the way (it is not an error of the wallboard).

import { getJson } from "../lib/api";
import { h, setText, setValue } from "../lib/dom";
import { clock, count, duration, title } from "../lib/format";
import type { Worklist, WorklistContact } from "../lib/types";

const EVERY_MS = 15_000;
const MAX_ROWS = 100;

type Kind = "not-reached" | "reached" | "unknown";

function kind(c: WorklistContact): Kind {
  if (!c.customer_known) return "unknown";
  return c.reached ? "reached" : "not-reached";
}

const ORDER: Record<Kind, number> = { "not-reached": 0, reached: 1, unknown: 2 };

/** Not reached first, then reached, then no customer key; newest first inside each. */
export function ordered(contacts: WorklistContact[]): WorklistContact[] {
  return [...contacts].sort(
    (a, b) => ORDER[kind(a)] - ORDER[kind(b)] || b.abandoned_ms - a.abandoned_ms || a.contact.localeCompare(b.contact),
  );
}

function figure(field: string, label: string, value: number | null, text: string): HTMLElement {
  const dd = h("dd", { "data-worklist-field": field }, text);
  setValue(dd, value);
  return h("div", { class: "wl-figure" }, h("dt", {}, label), dd);
}

function reachedText(c: WorklistContact): string {
  if (!c.customer_known) return "no customer key";
  if (!c.reached) return "not yet";
  return `${title(c.reached.channel)} after ${duration(c.reached.delay_seconds)}`;
}

function row(c: WorklistContact, timeZone: string | undefined): HTMLElement {
  const k = kind(c);
  const stage = c.outcome === "timed_out" ? "timed out" : (c.abandon_stage ?? "");
  return h(
    "tr",
    { "data-contact": c.contact, "data-reached": k, "data-delay": c.reached ? String(c.reached.delay_seconds) : null },
    h("td", {}, clock(new Date(c.abandoned_ms), timeZone, false)),
    h("td", {}, c.queue),
    h("td", {}, title(c.channel)),
    h("td", { class: "num" }, duration(c.wait_ms === null ? null : c.wait_ms / 1000)),
    h("td", {}, stage),
    h("td", { class: "wl-customer", title: c.customer ?? "" }, c.customer ? c.customer.slice(0, 12) : "–"),
    h("td", { "data-status": k === "not-reached" ? "warning" : k === "reached" ? "ok" : "none" }, reachedText(c)),
  );
}

export function renderWorklist(view: HTMLElement, doc: Worklist, timeZone: string | undefined): void {
  const t = doc.total;
  view.querySelector("#worklist-figures")!.replaceChildren(
    figure("not_reached", "Not reached", t.not_reached, count(t.not_reached)),
    figure("median_seconds_to_reach", "Median time to reach", t.median_seconds_to_reach, duration(t.median_seconds_to_reach)),
    figure("abandoned", "Abandoned", t.abandoned, count(t.abandoned)),
    figure("reached", "Reached", t.reached, count(t.reached)),
  );
  const rows = ordered(doc.contacts);
  view.querySelector("#worklist-body")!.replaceChildren(...rows.slice(0, MAX_ROWS).map((c) => row(c, timeZone)));
  const more = rows.length > MAX_ROWS ? ` · first ${MAX_ROWS} of ${rows.length}` : "";
  setText(view.querySelector("#worklist-note")!, `reached again within ${duration(doc.callback_window_seconds)}${more}`);
  view.dataset.window = doc.window;
  if (doc.contacts.length) delete view.dataset.empty;
  else view.dataset.empty = "1";
}

/** Polls the worklist for the wallboard's window; a refusal (role, no history) hides the panel. */
export function startWorklist(view: HTMLElement, window: string, timeZone: () => string | undefined, onChange: () => void): void {
  let busy = false;
  const load = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      const answer = await getJson<Worklist>(`/api/v1/contacts/abandoned?window=${encodeURIComponent(window)}`);
      if (answer.ok) renderWorklist(view, answer.data, timeZone());
      else if (answer.status === 401 || answer.status === 403 || answer.status === 503) view.dataset.empty = "1";
      onChange();
    } finally {
      busy = false;
    }
  };
  void load();
  globalThis.setInterval(() => void load(), EVERY_MS);
}
