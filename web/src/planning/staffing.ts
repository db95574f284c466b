// Agents needed per interval of a day: forecast, AHT, Erlang C and Erlang A, expected SL.

import uPlot from "uplot";
import { getJson } from "../lib/api";
import { cssVar } from "../lib/barchart";
import { h } from "../lib/dom";
import { count, duration, pct } from "../lib/format";
import { toCsv, download } from "./csv";
import { empty, noteDemo, query, setState, unavailable } from "./panel";
import type { Filters, Staffing, StaffRow } from "./types";
import { stamp, timeTicks } from "./volume";

export interface StaffQuery extends Filters {
  date: string;
  targetSl: string;
  threshold: string;
  shrinkage: string;
}

let plot: uPlot | null = null;

export async function loadStaffing(panel: HTMLElement, body: HTMLElement, q: StaffQuery): Promise<void> {
  setState(panel, "loading");
  const path = `/api/v1/staffing?${query({ date: q.date, channel: q.channel, queue: q.queue, target_sl: q.targetSl,
    threshold: q.threshold, shrinkage: q.shrinkage, tz: q.timeZone })}`;
  const answer = await getJson<Staffing>(path, 20_000);
  plot?.destroy();
  plot = null;
  if (!answer.ok) {
    unavailable(panel, body, "Staffing", "GET /api/v1/staffing", answer.status, answer.message);
    return;
  }
  const rows = Array.isArray(answer.data.rows) ? answer.data.rows : [];
  noteDemo("staffing", answer.data.demo);
  if (!rows.length) {
    empty(panel, body, "No forecast for this day (not enough history yet).");
    return;
  }
  setState(panel, "ready");
  const chart = h("div", { class: "plot small" });
  const peak = rows.reduce((a, r) => ((r.agents_erlang_c ?? 0) > (a.agents_erlang_c ?? 0) ? r : a), rows[0]!);
  const csv = h("button", { type: "button", class: "link-button" }, "CSV");
  csv.addEventListener("click", () => download(`ccpulse-staffing-${q.date}.csv`,
    new Blob([toCsv(rows.map(flat))], { type: "text/csv;charset=utf-8" })));
  body.replaceChildren(
    targets(answer.data),
    h("div", { class: "totals" },
      h("div", { class: "stat" }, h("span", { class: "label" }, "Forecast contacts"), h("b", {}, count(rows.reduce((a, r) => a + (r.forecast_offered ?? 0), 0)))),
      h("div", { class: "stat" }, h("span", { class: "label" }, "Peak agents (Erlang C)"),
        h("b", {}, `${count(peak.agents_erlang_c)} at ${stamp(Date.parse(peak.start) / 1000, q.timeZone).split(" ").pop()}`)),
      csv),
    chart,
    table(rows, q.timeZone));
  plot = new uPlot(options(chart, q.timeZone), [
    rows.map((r) => Date.parse(r.start) / 1000),
    rows.map((r) => r.agents_erlang_c ?? null),
    rows.map((r) => r.agents_erlang_a ?? null),
  ], chart);
}

function options(box: HTMLElement, timeZone: string | undefined): uPlot.Options {
  const fg = cssVar(box, "--muted", "#8da2b5");
  const step = uPlot.paths.stepped!({ align: 1 });
  return {
    width: Math.max(300, box.clientWidth || 600),
    height: 180,
    tzDate: timeZone ? (ts) => uPlot.tzDate(new Date(ts * 1000), timeZone) : undefined,
    cursor: { points: { show: false } },
    legend: { live: false },
    scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
    axes: [{ stroke: fg, grid: { show: false }, values: (_u, splits) => timeTicks(splits, timeZone) }, { stroke: fg, grid: { stroke: cssVar(box, "--grid", "#8882"), width: 1 }, size: 40 }],
    series: [
      {},
      { label: "Erlang C", stroke: cssVar(box, "--accent", "#38bdf8"), width: 2, paths: step, points: { show: false } },
      { label: "Erlang A", stroke: cssVar(box, "--accent-2", "#a78bfa"), width: 2, dash: [5, 4], paths: step, points: { show: false } },
    ],
  };
}

/** Which answer-time target each channel was staffed against (each its own, unless one was asked). */
function targets(doc: Staffing): HTMLElement {
  const pairs = Object.entries(doc.thresholds_seconds ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const text = pairs.map(([channel, s]) => `${channel} ${duration(s)}`).join(" · ");
  const lead = doc.threshold_seconds == null ? "Each channel against its own target" : "Every channel within the same time";
  return h("p", { class: "note", id: "staffing-targets" }, `${lead}: ${Math.round(doc.target_sl * 100)} % within ${text}`);
}

/** A row for CSV: the mix as one column per channel and figure (voice_agents_erlang_c, ...). */
function flat(r: StaffRow): Record<string, unknown> {
  const { by_channel: byChannel, ...rest } = r;
  const out: Record<string, unknown> = { ...rest };
  for (const [channel, part] of Object.entries(byChannel ?? {}))
    for (const [name, value] of Object.entries(part)) out[`${channel}_${name}`] = value;
  return out;
}

/** The interval's agents by channel, largest first: "voice 12 · chat 3". */
function mix(r: StaffRow): string {
  return Object.entries(r.by_channel ?? {})
    .filter(([, part]) => part.agents_erlang_c > 0)
    .sort(([, a], [, b]) => b.agents_erlang_c - a.agents_erlang_c)
    .map(([channel, part]) => `${channel} ${count(part.agents_erlang_c)}`)
    .join(" · ");
}

function table(rows: StaffRow[], timeZone: string | undefined): HTMLElement {
  const time = (iso: string | undefined) => (iso ? stamp(Date.parse(iso) / 1000, timeZone).split(" ").pop() : "");
  return h("div", { class: "table-wrap scroll" }, h("table", { class: "data", id: "staffing-rows" },
    h("thead", {}, h("tr", {}, h("th", {}, "Interval"), ...["Forecast", "AHT", "Erlang C", "Erlang A", "Expected SL"].map((t) => h("th", { class: "num" }, t)), h("th", {}, "Mix (Erlang C)"))),
    h("tbody", {}, ...rows.map((r) => h("tr", { "data-start": r.start },
      h("td", {}, `${time(r.start)}–${time(r.end)}`),
      h("td", { class: "num" }, typeof r.forecast_offered === "number" ? r.forecast_offered.toFixed(1) : "–"),
      h("td", { class: "num" }, duration(r.aht_seconds)),
      h("td", { class: "num strong", "data-field": "agents_erlang_c" }, count(r.agents_erlang_c)),
      h("td", { class: "num", "data-field": "agents_erlang_a" }, count(r.agents_erlang_a)),
      h("td", { class: "num" }, pct(r.expected_sl)),
      h("td", { "data-field": "mix" }, mix(r)))))));
}
