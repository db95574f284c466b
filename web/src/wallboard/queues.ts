// The per-queue table: what is waiting where, and how each queue did over the window.

import { count, duration, pct, title } from "../lib/format";
import type { FigureName, Figures, LiveDoc } from "../lib/types";
import { renderRows, type Cell, type Row } from "./table";
import { describe, figureStatus } from "./thresholds";
import { agentsTitle, channelOrder } from "./tiles";

type Col = [field: FigureName, format: (f: Figures) => string, rated?: boolean];

const COLUMNS: Col[] = [
  ["in_queue", (f) => count(f.in_queue)],
  ["longest_wait_seconds", (f) => duration(f.longest_wait_seconds), true],
  ["offered", (f) => count(f.offered)],
  ["answered", (f) => count(f.answered)],
  ["abandoned", (f) => count(f.abandoned)],
  ["service_level", (f) => pct(f.service_level, 1), true],
  ["abandon_rate", (f) => pct(f.abandon_rate, 1), true],
  ["asa_seconds", (f) => duration(f.asa_seconds)],
  ["aht_seconds", (f) => duration(f.aht_seconds)],
];

/** `focus`: the queue an alert link named (`/?channel=…&queue=…`), marked on its row. */
export function renderQueues(tbody: HTMLElement, doc: LiveDoc, focus: string | null = null): void {
  const names = Object.keys(doc.queues).sort((a, b) => {
    const [fa, fb] = [doc.queues[a]!, doc.queues[b]!];
    return channelOrder(fa.channel ?? "", fb.channel ?? "") || a.localeCompare(b);
  });
  const rows: Row[] = names.map((name) => {
    const fig = doc.queues[name]!;
    const channel = fig.channel ?? "";
    const cells: Cell[] = [
      { field: "queue", value: name, text: name, cls: "name" },
      { field: "channel", value: channel, text: title(channel), cls: "muted" },
      ...COLUMNS.slice(0, 2).map((col) => cell(col, fig, channel, name)),
      { field: "agents.available", value: fig.agents?.available ?? null, text: count(fig.agents?.available), cls: "num", title: agentsTitle(fig) },
      ...COLUMNS.slice(2).map((col) => cell(col, fig, channel, name)),
    ];
    const focused = name === focus ? "true" : "false";
    return { key: name, attrs: { "data-scope": "queue", "data-queue": name, "data-window": doc.window, "data-focus": focused }, cells };
  });
  renderRows(tbody, rows);
}

function cell([field, format, rated]: Col, fig: Figures, channel: string, name: string): Cell {
  return {
    field,
    value: fig[field] ?? null,
    text: format(fig),
    status: rated ? figureStatus(fig, field, channel, name) : null,
    cls: "num",
    title: rated ? describe(field, channel, name, fig) : "",
  };
}
