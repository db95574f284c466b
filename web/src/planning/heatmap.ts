// Hour of day × weekday: offered contacts (mean or 90th percentile over N weeks) as a grid.

import { getJson } from "../lib/api";
import { h } from "../lib/dom";
import { empty, noteDemo, query, setState, unavailable } from "./panel";
import type { Filters, Heatmap } from "./types";

const DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

export async function loadHeatmap(panel: HTMLElement, body: HTMLElement, weeks: number, measure: "mean" | "p90", f: Filters): Promise<void> {
  setState(panel, "loading");
  const answer = await getJson<Heatmap>(`/api/v1/volume/heatmap?${query({ weeks, tz: f.timeZone, channel: f.channel, queue: f.queue, current: "true" })}`, 20_000);
  if (!answer.ok) {
    unavailable(panel, body, "The heat map", "GET /api/v1/volume/heatmap", answer.status, answer.message);
    return;
  }
  const cells = Array.isArray(answer.data.cells) ? answer.data.cells : [];
  noteDemo("heatmap", answer.data.demo);
  if (!cells.some((c) => (c[measure] ?? 0) > 0)) {
    empty(panel, body, `No contacts in the last ${weeks} weeks or this week so far.`);
    return;
  }
  setState(panel, "ready");
  const value = new Map(cells.map((c) => [`${c.weekday}:${c.hour}`, c]));
  const max = Math.max(1e-9, ...cells.map((c) => c[measure] ?? 0));
  const table = h("table", { class: "heat", "data-measure": measure },
    h("thead", {}, h("tr", {}, h("th", {}), ...Array.from({ length: 24 }, (_, hr) => h("th", {}, hr % 3 === 0 ? String(hr).padStart(2, "0") : "")))),
    h("tbody", {}, ...DAYS.map((day, wd) => h("tr", {}, h("th", {}, day), ...Array.from({ length: 24 }, (_, hr) => {
      const cell = value.get(`${wd}:${hr}`);
      const v = cell?.[measure] ?? 0;
      const level = v / max;
      return h("td", {
        "data-weekday": wd, "data-hour": hr, "data-value": String(v),
        style: `--level:${level.toFixed(3)}`,
        class: [level > 0.55 ? "hot" : "", cell?.current_week ? "current" : ""].filter(Boolean).join(" "),
        "data-weeks": String(cell?.weeks ?? ""),
        title: `${day} ${String(hr).padStart(2, "0")}:00 — mean ${fmt(cell?.mean)}, p90 ${fmt(cell?.p90)} offered per hour over ${cell?.weeks ?? "–"} weeks${cell?.current_week ? ", this week so far included" : ""}`,
      }, v >= 10 ? Math.round(v).toString() : v > 0 ? v.toFixed(1) : "");
    })))));
  const current = cells.some((c) => c.current_week);
  body.replaceChildren(table, h("p", { class: "muted legend", id: "heat-legend" },
    `Offered per hour, ${measure === "mean" ? "mean" : "90th percentile"} over the last ${answer.data.weeks ?? weeks} complete weeks`
    + `${current ? " and this week so far (underlined cells: hours already over this week count it)" : ""}`
    + `${f.timeZone ? ` (${f.timeZone})` : ""}. Busiest: ${fmt(max)}.`));
}

function fmt(v: number | null | undefined): string {
  return typeof v === "number" ? (Math.round(v * 10) / 10).toString() : "–";
}
