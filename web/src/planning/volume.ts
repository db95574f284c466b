// Contact volume per interval: offered and abandoned as bars, answered as a line, service level
// on its own axis; split by channel or queue as one line each. CSV of the same rows.

import uPlot from "uplot";
import { getJson } from "../lib/api";
import { compact, cssVar } from "../lib/barchart";
import { h } from "../lib/dom";
import { count, duration, pct } from "../lib/format";
import { download, fetchCsv, toCsv } from "./csv";
import { empty, noteDemo, query, setState, unavailable } from "./panel";
import { recordBars, timeAxis, withHoles } from "./timeaxis";
import type { Filters, Volume, VolumeRow } from "./types";

export interface VolumeQuery extends Filters {
  from: string; // YYYY-MM-DD, first day included
  to: string; // YYYY-MM-DD, last day included
  interval: string;
  groupBy: string;
}

const COLUMNS = ["start", "end", "channel", "queue", "offered", "answered", "abandoned", "abandon_rate",
  "service_level", "asa_seconds", "aht_seconds", "handled", "logged_in_hours", "labour_cost", "cost_per_handled",
  "handled_per_logged_in_hour", "partial"];
const WIDTH_S: Record<string, number> = { "15m": 900, "30m": 1800, "1h": 3600, "1d": 86400, "1w": 7 * 86400 };
const PALETTE = ["#38bdf8", "#a78bfa", "#f0b429", "#3fb950", "#ff7b72", "#79c0ff", "#d2a8ff", "#ffa657"];

let plot: uPlot | null = null;
let lastRows: VolumeRow[] = [];

export function volumePath(q: VolumeQuery): string {
  return `/api/v1/volume?${query({
    interval: q.interval, from: `${q.from}T00:00:00`, to: `${nextDay(q.to)}T00:00:00`, tz: q.timeZone,
    channel: q.channel, queue: q.queue, group_by: q.groupBy,
  })}`;
}

export function nextDay(date: string): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

export async function loadVolume(panel: HTMLElement, body: HTMLElement, q: VolumeQuery): Promise<void> {
  setState(panel, "loading");
  const answer = await getJson<Volume>(volumePath(q), 20_000);
  plot?.destroy();
  plot = null;
  if (!answer.ok) {
    lastRows = [];
    unavailable(panel, body, "Contact volume", "GET /api/v1/volume", answer.status, answer.message);
    return;
  }
  lastRows = Array.isArray(answer.data.rows) ? answer.data.rows : [];
  noteDemo("volume", answer.data.demo);
  if (!lastRows.length) {
    empty(panel, body, "No contacts in this range for these filters.");
    return;
  }
  setState(panel, "ready");
  const chart = h("div", { class: "plot", id: "volume-chart" });
  const cost = answer.data.cost ?? { currency: "EUR", configured: false }; // older servers send none
  body.replaceChildren(totals(lastRows, q), costLine(lastRows, cost), chart, rowsTable(lastRows, q, cost.currency));
  // The x scale is the range asked (as the api aligned it), not the rows': empty days at either
  // end stay empty instead of the bars stretching to fill the width.
  const range: [number, number] = [Date.parse(answer.data.from) / 1000, Date.parse(answer.data.to) / 1000];
  plot = new uPlot(options(chart, q, lastRows, range), data(lastRows, q.groupBy, WIDTH_S[q.interval] ?? 3600), chart);
}

/** The row's channel or queue, as grouped by (the api's rows have the grouped fields only). */
function groupValue(r: VolumeRow, groupBy: string): string {
  return (groupBy === "channel" ? r.channel : groupBy === "queue" ? r.queue : undefined) ?? "—";
}

function groups(rows: VolumeRow[], groupBy: string): string[] {
  if (!groupBy) return [];
  return [...new Set(rows.map((r) => groupValue(r, groupBy)))].sort();
}

function data(rows: VolumeRow[], groupBy: string, widthS: number): uPlot.AlignedData {
  const xs = withHoles([...new Set(rows.map((r) => Date.parse(r.start) / 1000))].sort((a, b) => a - b), widthS);
  const at = new Map(xs.map((x, i) => [x, i]));
  const column = (pick: (r: VolumeRow) => number | null | undefined, keep: (r: VolumeRow) => boolean = () => true) => {
    const out: (number | null)[] = xs.map(() => null);
    for (const r of rows) {
      if (!keep(r)) continue;
      const i = at.get(Date.parse(r.start) / 1000)!;
      const v = pick(r);
      if (typeof v === "number") out[i] = (out[i] ?? 0) + v;
    }
    return out;
  };
  if (groupBy) return [xs, ...groups(rows, groupBy).map((g) => column((r) => r.offered, (r) => groupValue(r, groupBy) === g))];
  return [xs, column((r) => r.offered), column((r) => r.abandoned), column((r) => r.answered),
    column((r) => (typeof r.service_level === "number" ? 100 * r.service_level : null))];
}

function options(box: HTMLElement, q: VolumeQuery, rows: VolumeRow[], range: [number, number]): uPlot.Options {
  const fg = cssVar(box, "--muted", "#8da2b5");
  const grid = { stroke: cssVar(box, "--grid", "rgba(128,128,128,.15)"), width: 1 };
  const accent = cssVar(box, "--accent", "#38bdf8");
  // Each bar stands on its interval's start and reaches towards its end.
  const bars = uPlot.paths.bars!({ size: [0.7, 60], align: 1 });
  const series: uPlot.Series[] = [{ value: (_u, v) => (v == null ? "" : stamp(v, q.timeZone)) }];
  if (q.groupBy) {
    groups(rows, q.groupBy).forEach((g, i) => series.push({ label: g, stroke: PALETTE[i % PALETTE.length], width: 2, points: { show: false } }));
  } else {
    series.push(
      { label: "offered", stroke: accent, fill: `${accent}55`, paths: bars, points: { show: false }, value: (_u, v) => count(v) },
      { label: "abandoned", stroke: cssVar(box, "--critical", "#ff6b6b"), fill: cssVar(box, "--critical", "#ff6b6b"), paths: bars, points: { show: false }, value: (_u, v) => count(v) },
      { label: "answered", stroke: cssVar(box, "--ok", "#3fb950"), width: 2, points: { show: false }, value: (_u, v) => count(v) },
      { label: "service level", stroke: cssVar(box, "--warning", "#e3b341"), width: 1.5, dash: [6, 4], scale: "%", points: { show: false }, value: (_u, v) => (v == null ? "–" : `${v.toFixed(1)}%`) },
    );
  }
  return {
    width: Math.max(320, box.clientWidth || 900),
    height: 300,
    tzDate: q.timeZone ? (ts) => uPlot.tzDate(new Date(ts * 1000), q.timeZone!) : undefined,
    cursor: { points: { show: false } },
    legend: { live: false },
    scales: { x: { time: true, range: () => range }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.08)] }, "%": { range: [0, 100] } },
    axes: [
      timeAxis(box, fg, q.timeZone),
      { stroke: fg, grid, values: (_u, s) => s.map(compact), size: 50 },
      ...(q.groupBy ? [] : [{ scale: "%", side: 1, stroke: fg, grid: { show: false }, values: (_u: uPlot, s: number[]) => s.map((v) => `${v}%`), size: 50 } as uPlot.Axis]),
    ],
    series,
    hooks: { draw: [recordBars(box)] },
  };
}

function totals(rows: VolumeRow[], q: VolumeQuery): HTMLElement {
  const sum = (f: keyof VolumeRow) => rows.reduce((a, r) => a + (typeof r[f] === "number" ? (r[f] as number) : 0), 0);
  const offered = sum("offered");
  const perStart = new Map<string, number>();
  for (const r of rows) perStart.set(r.start, (perStart.get(r.start) ?? 0) + (r.offered ?? 0));
  const peak = [...perStart.entries()].sort((a, b) => b[1] - a[1])[0];
  const stat = (label: string, value: string, field: string, raw: number) =>
    h("div", { class: "stat", "data-field": field, "data-value": String(raw) }, h("span", { class: "label" }, label), h("b", {}, value));
  return h("div", { class: "totals" },
    stat("Offered", count(offered), "offered", offered),
    stat("Answered", count(sum("answered")), "answered", sum("answered")),
    stat("Abandoned", count(sum("abandoned")), "abandoned", sum("abandoned")),
    stat("Abandoned / offered", pct(offered ? sum("abandoned") / offered : null), "abandoned_share", offered ? sum("abandoned") / offered : 0),
    peak ? stat("Busiest interval", `${stamp(Date.parse(peak[0]) / 1000, q.timeZone)} · ${count(peak[1])}`, "peak", peak[1]) : null as never,
    rows.some((r) => r.partial) ? h("span", { class: "muted partial-note" }, "The latest interval is still open (partial).") : null as never);
}

/** Cost per case over the range (docs/metrics.md#cost): sums of the rows, then the ratios. */
export function costLine(rows: VolumeRow[], cost: Volume["cost"]): HTMLElement {
  const handled = rows.reduce((a, r) => a + (r.handled ?? 0), 0);
  const hours = rows.reduce((a, r) => a + (r.logged_in_hours ?? 0), 0);
  const priced = rows.every((r) => r.labour_cost !== null && r.labour_cost !== undefined);
  const spent = rows.reduce((a, r) => a + (r.labour_cost ?? 0), 0);
  const stat = (label: string, value: string, field: string, raw: number | null) =>
    h("div", { class: "stat", "data-field": field, "data-value": raw === null ? "" : String(raw) }, h("span", { class: "label" }, label), h("b", {}, value));
  const perCase = cost.configured && priced && handled ? spent / handled : null;
  return h("div", { class: "totals cost", id: "volume-cost" },
    stat("Handled", count(handled), "handled", handled),
    stat("Logged-in hours", hours.toFixed(1), "logged_in_hours", hours),
    stat("Handled per logged-in hour", hours ? (handled / hours).toFixed(2) : "—", "handled_per_logged_in_hour", hours ? handled / hours : null),
    cost.configured
      ? stat("Cost per handled contact", perCase === null ? "—" : money(perCase, cost.currency), "cost_per_handled", perCase)
      : h("span", { class: "muted", "data-field": "cost_per_handled" }, "Cost per case: set an hourly cost (CCPULSE_COST_PER_HOUR) to see it."));
}

export function money(v: number, currency: string): string {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency, maximumFractionDigits: 2 }).format(v);
  } catch {
    return `${v.toFixed(2)} ${currency}`;
  }
}

function rowsTable(rows: VolumeRow[], q: VolumeQuery, currency: string): HTMLElement {
  const grouped = q.groupBy ? [q.groupBy] : [];
  const head = h("tr", {}, h("th", {}, "Interval"), ...grouped.map((g) => h("th", {}, g)),
    ...["Offered", "Answered", "Abandoned", "Abandon rate", "SL", "ASA", "AHT", "Cost / case"].map((t) => h("th", { class: "num" }, t)));
  const body = rows.map((r) => h("tr", { "data-start": r.start, class: r.partial ? "partial" : "" },
    h("td", {}, stamp(Date.parse(r.start) / 1000, q.timeZone), r.partial ? h("span", { class: "tag" }, "partial") : null),
    ...grouped.map((g) => h("td", {}, groupValue(r, g))),
    h("td", { class: "num", "data-field": "offered" }, count(r.offered)),
    h("td", { class: "num", "data-field": "answered" }, count(r.answered)),
    h("td", { class: "num", "data-field": "abandoned" }, count(r.abandoned)),
    h("td", { class: "num" }, pct(r.abandon_rate)),
    h("td", { class: "num" }, pct(r.service_level)),
    h("td", { class: "num" }, duration(r.asa_seconds)),
    h("td", { class: "num" }, duration(r.aht_seconds)),
    h("td", { class: "num", "data-field": "cost_per_handled" }, r.cost_per_handled === null || r.cost_per_handled === undefined ? "—" : money(r.cost_per_handled, currency))));
  return h("details", { class: "rows" }, h("summary", {}, `${rows.length} rows`),
    h("div", { class: "table-wrap" }, h("table", { class: "data", id: "volume-rows" }, h("thead", {}, head), h("tbody", {}, ...body))));
}

/** 24-hour ticks in the configured zone; midnight ticks name the day instead. */
export function timeTicks(splits: number[], timeZone: string | undefined): string[] {
  const fmt = (opts: Intl.DateTimeFormatOptions, ts: number) => {
    try {
      return new Intl.DateTimeFormat("en-GB", { timeZone, hour12: false, ...opts }).format(new Date(ts * 1000));
    } catch {
      return new Date(ts * 1000).toISOString().slice(11, 16);
    }
  };
  return splits.map((ts) => {
    const hm = fmt({ hour: "2-digit", minute: "2-digit" }, ts);
    return hm === "00:00" ? fmt({ weekday: "short", day: "numeric" }, ts) : hm;
  });
}

export function stamp(epochS: number, timeZone: string | undefined): string {
  try {
    return new Intl.DateTimeFormat("en-GB", { timeZone, weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hour12: false })
      .format(new Date(epochS * 1000));
  } catch {
    return new Date(epochS * 1000).toISOString().slice(0, 16).replace("T", " ");
  }
}

/** CSV: the api's own when it can, else the rows already on screen (or fetched as JSON now). */
export async function downloadVolume(q: VolumeQuery): Promise<string> {
  const name = `ccpulse-volume-${q.interval}-${q.from}-to-${q.to}${q.channel ? `-${q.channel}` : ""}${q.queue ? `-${q.queue}` : ""}.csv`;
  const got = await fetchCsv(volumePath(q));
  if (got instanceof Blob) {
    download(name, got);
    return "api";
  }
  if (typeof got === "number" && got !== 0 && !lastRows.length) return `unavailable:${got}`;
  const rows = lastRows.length ? lastRows : [];
  download(name, new Blob([toCsv(rows, COLUMNS)], { type: "text/csv;charset=utf-8" }));
  return "client";
}

export function resizeVolume(box: HTMLElement): void {
  if (plot) plot.setSize({ width: Math.max(320, box.clientWidth), height: 300 });
}
