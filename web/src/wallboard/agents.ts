// Agents: state and time in state (ticking between updates), the window's work; sortable by
// any column, filterable by name, state and queue (when the api says which queues agents serve).

import { h, setText } from "../lib/dom";
import { count, duration, pct, title } from "../lib/format";
import type { Agent, LiveDoc } from "../lib/types";
import { renderRows, type Cell, type Row } from "./table";

type Getter = (name: string, a: Agent) => string | number | null;
interface Column {
  field: string;
  label: string;
  get: Getter;
  format: (v: unknown, a: Agent) => string;
}

const num = (v: unknown) => (typeof v === "number" ? v : null);
const STATE_ORDER = ["available", "idle", "ready", "on_contact", "busy", "wrap_up", "not_ready", "break", "away", "offline"];

export const COLUMNS: Column[] = [
  { field: "agent", label: "Agent", get: (n) => n, format: (v) => String(v) },
  { field: "state", label: "State", get: (_, a) => a.state ?? null, format: (v, a) => (v ? title(String(v)) + (a.state_reason ? ` (${a.state_reason})` : "") : "–") },
  { field: "state_seconds", label: "In state", get: (_, a) => a.state_seconds ?? null, format: (v) => duration(num(v)) },
  { field: "answered", label: "Answered", get: (_, a) => a.answered ?? 0, format: (v) => count(num(v)) },
  { field: "handled", label: "Handled", get: (_, a) => a.handled ?? 0, format: (v) => count(num(v)) },
  { field: "aht_seconds", label: "AHT", get: (_, a) => a.aht_seconds ?? null, format: (v) => duration(num(v)) },
  { field: "asa_seconds", label: "ASA", get: (_, a) => a.asa_seconds ?? null, format: (v) => duration(num(v)) },
  { field: "occupancy", label: "Occupancy", get: (_, a) => a.occupancy ?? null, format: (v) => pct(num(v), 0) },
  { field: "transferred", label: "Transfers", get: (_, a) => a.transferred ?? 0, format: (v) => count(num(v)) },
];

export function stateClass(state: string | null | undefined): string {
  const s = (state ?? "").toLowerCase();
  if (!s) return "none";
  if (["available", "idle", "ready"].includes(s)) return "avail";
  if (["on_contact", "busy", "talking", "on_call", "in_call"].includes(s)) return "busy";
  if (["wrap_up", "acw", "after_call_work"].includes(s)) return "wrap";
  if (["offline", "logged_out", "signed_out"].includes(s)) return "off";
  return "aux";
}

interface View {
  sort: string;
  dir: 1 | -1;
  text: string;
  state: string;
  queue: string;
}

const view: View = { sort: "state", dir: 1, text: "", state: "", queue: "" };
let last: { doc: LiveDoc; at: number } | null = null;
let tbody: HTMLElement;
let onChange: () => void = () => {};

export function mountAgents(table: HTMLTableElement, controls: HTMLElement, changed: () => void): void {
  onChange = changed;
  tbody = table.tBodies[0]!;
  const head = h("tr", {}, ...COLUMNS.map((c) =>
    h("th", { "data-sort": c.field, class: c.field === "agent" || c.field === "state" ? "" : "num", onclick: () => sortBy(c.field) },
      // A button, so Tab reaches every header and Enter/Space sort (its click bubbles to the th).
      h("button", { type: "button", class: "sort", "data-sort": c.field }, c.label))));
  table.tHead!.replaceChildren(head);
  const search = h("input", { type: "search", placeholder: "Find agent", "data-filter": "text", "aria-label": "Find agent" });
  search.addEventListener("input", () => set({ text: search.value.trim().toLowerCase() }));
  const state = h("select", { "data-filter": "state", "aria-label": "State" }, h("option", { value: "" }, "All states"));
  state.addEventListener("change", () => set({ state: state.value }));
  const queue = h("select", { "data-filter": "queue", "aria-label": "Queue" }, h("option", { value: "" }, "All queues"));
  queue.addEventListener("change", () => set({ queue: queue.value }));
  controls.replaceChildren(search, state, queue);
  markSort();
}

function set(part: Partial<View>): void {
  Object.assign(view, part);
  if (last) renderAgents(last.doc);
  onChange();
}

function sortBy(field: string): void {
  set(view.sort === field ? { dir: view.dir === 1 ? -1 : 1 } : { sort: field, dir: field === "agent" || field === "state" ? 1 : -1 });
  markSort();
}

function markSort(): void {
  for (const th of Array.from(document.querySelectorAll<HTMLElement>("#agents-table th"))) {
    const on = th.dataset.sort === view.sort;
    th.setAttribute("aria-sort", on ? (view.dir === 1 ? "ascending" : "descending") : "none");
  }
}

function queuesOf(a: Agent): string[] {
  return Array.isArray(a.queues) ? a.queues.map(String) : [];
}

function compare(a: [string, Agent], b: [string, Agent]): number {
  const col = COLUMNS.find((c) => c.field === view.sort) ?? COLUMNS[1]!;
  const [va, vb] = [col.get(...a), col.get(...b)];
  let out: number;
  if (view.sort === "state") {
    const rank = (s: unknown) => (STATE_ORDER.indexOf(String(s)) + STATE_ORDER.length + 1) % (STATE_ORDER.length + 1);
    out = rank(va) - rank(vb) || String(va ?? "").localeCompare(String(vb ?? ""));
    // Within a state, the longest in it first: who has been waiting for a contact, or on one, longest.
    out = out * view.dir || (b[1].state_seconds ?? 0) - (a[1].state_seconds ?? 0);
    return out || a[0].localeCompare(b[0]);
  }
  if (va === null || vb === null) out = va === vb ? 0 : va === null ? 1 : -1;
  else out = (typeof va === "number" && typeof vb === "number" ? va - vb : String(va).localeCompare(String(vb))) * view.dir;
  return out || a[0].localeCompare(b[0]);
}

export function renderAgents(doc: LiveDoc): void {
  last = { doc, at: Date.now() };
  const all = Object.entries(doc.agents ?? {});
  refreshFilters(all);
  const shown = all.filter(([name, a]) =>
    (!view.text || name.toLowerCase().includes(view.text)) &&
    (!view.state || a.state === view.state) &&
    (!view.queue || queuesOf(a).includes(view.queue)));
  shown.sort(compare);
  const rows: Row[] = shown.map(([name, a]) => ({
    key: name,
    attrs: { "data-scope": "agent", "data-agent": name, "data-state": stateClass(a.state) },
    cells: COLUMNS.map((c): Cell => {
      const value = c.get(name, a);
      return { field: c.field, value, text: c.format(value, a), cls: c.field === "agent" ? "name" : c.field === "state" ? "state" : "num" };
    }),
  }));
  renderRows(tbody, rows);
  const countEl = document.getElementById("agents-count");
  if (countEl) setText(countEl, shown.length === all.length ? `${all.length}` : `${shown.length} of ${all.length}`);
}

function refreshFilters(all: [string, Agent][]): void {
  const states = [...new Set(all.map(([, a]) => a.state).filter((s): s is string => !!s))].sort();
  const queues = [...new Set(all.flatMap(([, a]) => queuesOf(a)))].sort();
  fillSelect("state", states, "All states");
  const q = fillSelect("queue", queues, "All queues");
  if (q) q.hidden = queues.length === 0;
}

function fillSelect(kind: string, values: string[], all: string): HTMLSelectElement | null {
  const select = document.querySelector<HTMLSelectElement>(`select[data-filter="${kind}"]`);
  if (!select) return null;
  const key = values.join("|");
  if (select.dataset.key === key) return select;
  select.dataset.key = key;
  const current = select.value;
  select.replaceChildren(h("option", { value: "" }, all), ...values.map((v) => h("option", { value: v }, kind === "state" ? title(v) : v)));
  select.value = values.includes(current) ? current : "";
  return select;
}

/** Time in state moves every second, not only when the api sends an update. */
export function tickAgents(stale: boolean): void {
  if (!last) return;
  const elapsed = stale ? 0 : (Date.now() - last.at) / 1000;
  for (const td of Array.from(tbody.querySelectorAll<HTMLElement>('td[data-field="state_seconds"]'))) {
    const base = Number(td.dataset.value);
    if (td.dataset.value !== "null" && Number.isFinite(base)) setText(td, duration(base + elapsed));
  }
}

export function renderStateSummary(el: HTMLElement, doc: LiveDoc): void {
  const states = Object.entries(doc.agent_states ?? {}).sort(
    ([a], [b]) => (STATE_ORDER.indexOf(a) + 99) % 99 - (STATE_ORDER.indexOf(b) + 99) % 99 || a.localeCompare(b));
  const key = JSON.stringify(states);
  if (el.dataset.key === key) return;
  el.dataset.key = key;
  el.replaceChildren(...states.map(([state, n]) =>
    h("span", { class: "chip", "data-state": stateClass(state), "data-agent-state": state, "data-value": String(n) },
      h("b", {}, count(n)), ` ${title(state)}`)));
}
