// One tile per channel: waiting now and the longest wait big, then the window's rates and times,
// then today's answered / offered. Every figure carries data-scope/-channel/-field/-window/-value.

import { h, setStatus, setText, setValue } from "../lib/dom";
import { count, duration, pct, shortSeconds, title } from "../lib/format";
import type { FigureName, Figures, LiveDoc } from "../lib/types";
import { markDrill } from "./drill";
import { describe, figureStatus, statusOf, pairFor, worst, type Status } from "./thresholds";

interface Metric {
  field: FigureName;
  label: string;
  format: (v: unknown) => string;
  sub?: (f: Figures) => string;
  big?: boolean;
}

const n = (v: unknown) => (typeof v === "number" ? v : null);

const METRICS: Metric[] = [
  { field: "in_queue", label: "Waiting now", format: (v) => count(n(v)), big: true },
  { field: "longest_wait_seconds", label: "Longest wait", format: (v) => duration(n(v)), big: true },
  {
    field: "service_level",
    label: "SL",
    format: (v) => pct(n(v), 0),
    sub: (f) => `answered ≤ ${typeof f.service_level_threshold_seconds === "number" ? shortSeconds(f.service_level_threshold_seconds) : "?"}`,
  },
  {
    field: "abandon_rate",
    label: "Abandoned",
    format: (v) => pct(n(v), 1),
    sub: (f) => `${count(f.abandoned ?? 0)} ${f.abandoned === 1 ? "contact" : "contacts"}`,
  },
  { field: "asa_seconds", label: "ASA", format: (v) => duration(n(v)), sub: () => "avg to answer" },
  { field: "aht_seconds", label: "AHT", format: (v) => duration(n(v)), sub: () => "avg handling" },
  {
    field: "fcr_rate",
    label: "FCR",
    format: (v) => pct(n(v), 0),
    sub: (f) =>
      typeof f.fcr_measured_rate === "number" ? `measured ${pct(f.fcr_measured_rate, 0)}` : `${count(f.resolved ?? 0)} resolved`,
  },
];

// (Occupancy is an agent's figure, not a channel's: it was listed here and never shown.)
const EXTRAS: [FigureName, string, (v: number) => string][] = [
  ["csat", "CSAT", (v) => pct(v, 0)],
  ["nps", "NPS", (v) => v.toFixed(0)],
  ["active", "Open", (v) => count(v)],
];

interface Tile {
  root: HTMLElement;
  cells: Map<string, { el: HTMLElement; value: HTMLElement; sub: HTMLElement | null }>;
  answered: HTMLElement;
  offered: HTMLElement;
  todayAnswered: HTMLElement;
  todayOffered: HTMLElement;
  extras: HTMLElement;
  agents: HTMLElement;
  agentsValue: HTMLElement;
  fig: Figures | null;
  receivedAt: number;
}

const tiles = new Map<string, Tile>();

function attrs(channel: string, field: string, window: string) {
  return { "data-scope": "channel", "data-channel": channel, "data-field": field, "data-window": window };
}

function build(channel: string, window: string): Tile {
  const cells: Tile["cells"] = new Map();
  const metric = (m: Metric) => {
    const value = h("span", { class: "value" });
    const sub = m.sub ? h("span", { class: "sub" }) : null;
    const el = h("div", { class: m.big ? "metric big" : "metric", ...attrs(channel, m.field, m.big ? "now" : window) },
      h("span", { class: "label" }, m.label), value, sub);
    cells.set(m.field, { el, value, sub });
    if (!m.big) markDrill(el, m.field);
    return el;
  };
  const span = (field: string, w: string) => h("span", attrs(channel, field, w));
  const [answered, offered] = [span("answered", window), span("offered", window)];
  markDrill(answered, "answered");
  markDrill(offered, "offered");
  const [todayAnswered, todayOffered] = [span("answered", "today"), span("offered", "today")];
  const extras = h("div", { class: "extras" });
  const agentsValue = h("b", {});
  const agents = h("p", { class: "agents", ...attrs(channel, "agents.available", "now") }, "agents available ", agentsValue);
  const root = h("section", { class: "tile", "data-channel": channel },
    h("header", {}, h("h3", {}, title(channel)), h("span", { class: "tile-status" })),
    h("div", { class: "hero" }, ...METRICS.filter((m) => m.big).map(metric)),
    agents,
    h("div", { class: "grid" }, ...METRICS.filter((m) => !m.big).map(metric),
      h("div", { class: "metric volume", "data-status": "none" }, h("span", { class: "label", title: "answered / offered" }, "Answered / offered"),
        h("span", { class: "value" }, answered, h("span", { class: "of" }, " / "), offered),
        h("span", { class: "sub" }, "today ", todayAnswered, " / ", todayOffered))),
    extras);
  return { root, cells, answered, offered, todayAnswered, todayOffered, extras, agents, agentsValue, fig: null, receivedAt: 0 };
}

/** Today's totals per channel: from the same websocket message as `doc` (or a REST document
 * of the "today" window when another window is shown). */
export type Today = { channels: { [channel: string]: { answered: number; offered: number } | undefined } };

export function renderTiles(container: HTMLElement, doc: LiveDoc, today: Today | null): void {
  const names = Object.keys(doc.channels).sort(channelOrder);
  for (const [name, tile] of tiles) {
    if (!names.includes(name)) {
      tile.root.remove();
      tiles.delete(name);
    }
  }
  names.forEach((name, i) => {
    let tile = tiles.get(name);
    if (!tile) tiles.set(name, (tile = build(name, doc.window)));
    if (container.children[i] !== tile.root) container.insertBefore(tile.root, container.children[i] ?? null);
    update(tile, name, doc.channels[name]!, today?.channels[name] ?? null, doc.window);
  });
  container.dataset.count = String(names.length);
  const empty = container.querySelector(".empty");
  if (!names.length && !empty) container.append(h("p", { class: "empty" }, "No contacts in the last 24 hours yet."));
  if (names.length && empty) empty.remove();
}

/** A fixed order (fastest channels first), so tiles never jump around on a wall screen. */
const ORDER = ["voice", "chat", "sms", "social", "email"];
export function channelOrder(a: string, b: string): number {
  const rank = (c: string) => (ORDER.includes(c) ? ORDER.indexOf(c) : ORDER.length);
  return rank(a) - rank(b) || a.localeCompare(b);
}

function update(tile: Tile, channel: string, fig: Figures, today: { answered: number; offered: number } | null, window: string): void {
  tile.fig = fig;
  tile.receivedAt = Date.now();
  const statuses: (Status | null)[] = [];
  for (const m of METRICS) {
    const cell = tile.cells.get(m.field)!;
    const value = fig[m.field];
    setValue(cell.el, value);
    cell.el.dataset.window = m.big ? "now" : window;
    setText(cell.value, m.format(value));
    if (cell.sub && m.sub) setText(cell.sub, m.sub(fig));
    const status = figureStatus(fig, m.field, channel);
    setStatus(cell.el, status);
    cell.el.title = describe(m.field, channel, undefined, fig);
    statuses.push(status);
  }
  for (const [el, v, w] of [[tile.answered, fig.answered, window], [tile.offered, fig.offered, window],
    [tile.todayAnswered, today?.answered, "today"], [tile.todayOffered, today?.offered, "today"]] as const) {
    setValue(el, v ?? null);
    el.dataset.window = w;
    setText(el, count(v));
  }
  setValue(tile.agents, fig.agents?.available ?? null);
  setText(tile.agentsValue, count(fig.agents?.available));
  tile.agents.title = agentsTitle(fig);
  renderExtras(tile, fig);
  setStatus(tile.root, worst(statuses));
  setText(tile.root.querySelector(".tile-status")!, worst(statuses) ?? "");
}

function renderExtras(tile: Tile, fig: Figures): void {
  const parts = EXTRAS.filter(([f]) => typeof fig[f] === "number").map(([f, label, fmt]) =>
    h("span", { "data-field": f, "data-value": JSON.stringify(fig[f]) }, `${label} `, h("b", {}, fmt(fig[f] as number))));
  const key = parts.map((p) => p.textContent).join("|");
  if (tile.extras.dataset.key !== key) {
    tile.extras.dataset.key = key;
    tile.extras.replaceChildren(...parts);
  }
}

/** A scope's agents by state, for the tooltip of its "agents available" figure. */
export function agentsTitle(fig: Figures): string {
  const a = fig.agents;
  if (!a) return "";
  const reasons = Object.entries(a.not_ready_by_reason).map(([r, k]) => `${r} ${k}`).join(", ");
  return `available ${a.available}, on contact ${a.on_contact}, after-contact work ${a.after_contact_work}, ` +
    `not ready ${a.not_ready}${reasons ? ` (${reasons})` : ""}, offline ${a.offline}`;
}

/** Between updates, a caller still waiting keeps waiting: advance the longest wait each second. */
export function tickTiles(stale: boolean): void {
  for (const [channel, tile] of tiles) {
    const fig = tile.fig;
    if (!fig) continue;
    const base = fig.longest_wait_seconds;
    if (typeof base !== "number" || !fig.in_queue) continue;
    // Stale: show the figure as it was sent, not a guess from the page's clock.
    const now = stale ? base : base + (Date.now() - tile.receivedAt) / 1000;
    const cell = tile.cells.get("longest_wait_seconds")!;
    setText(cell.value, duration(now));
    setStatus(cell.el, statusOf(now, pairFor("longest_wait_seconds", channel, undefined, fig)));
  }
}
