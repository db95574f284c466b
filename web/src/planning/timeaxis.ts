// Time axes scaled to their range (issue 16: over 16 months the axis read "Mon 1, Thu 1, Tue 1…"):
// hours for a day, days for weeks, months for a year, the year wherever it changes; bars stand on
// a linear time scale over the asked range, a hole in the history stays a hole. What was drawn is
// left on the chart's box as data attributes (ticks with their extents, bars), for tests.

import type uPlot from "uplot";

const DAY_S = 86400;
export const AXIS_FONT = "12px system-ui, sans-serif";
const GAP_PX = 6; // least room between two labels

type Unit = "hour" | "day" | "month" | "year";

/** What a tick of this increment names: below a day hours, below four weeks days, and so on. */
export function unitOf(incrS: number): Unit {
  if (incrS < DAY_S) return "hour";
  if (incrS < 28 * DAY_S) return "day";
  if (incrS < 365 * DAY_S) return "month";
  return "year";
}

interface Parts {
  zone: string;
  year: string;
  month: string;
  day: string;
  weekday: string;
  hm: string;
}

function parts(ts: number, timeZone: string | undefined): Parts {
  const got: Record<string, string> = {};
  try {
    const fmt = new Intl.DateTimeFormat("en-GB", {
      timeZone, hour12: false, year: "numeric", month: "short", day: "numeric", weekday: "short", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
    });
    for (const p of fmt.formatToParts(new Date(ts * 1000))) got[p.type] = p.value;
  } catch {
    const iso = new Date(ts * 1000).toISOString();
    Object.assign(got, { year: iso.slice(0, 4), month: iso.slice(5, 7), day: String(Number(iso.slice(8, 10))), weekday: "", hour: iso.slice(11, 13), minute: iso.slice(14, 16) });
  }
  const hour = got.hour === "24" ? "00" : got.hour ?? "00";
  return { zone: got.timeZoneName ?? "UTC", year: got.year ?? "", month: got.month ?? "", day: got.day ?? "", weekday: got.weekday ?? "", hm: `${hour}:${got.minute ?? "00"}` };
}

/** Labels for ticks `incrS` apart on a span of `spanS`: the unit that fits, the day at midnight
 * on an hour axis, the year wherever it changes on a day or month axis (on every month when the
 * span is over a year, so no two labels read the same). The hour repeated when clocks go back
 * carries its zone's name. */
export function tickLabels(splits: number[], incrS: number, spanS: number, timeZone: string | undefined): string[] {
  const unit = unitOf(incrS);
  let lastYear = "";
  const seen = new Set<string>();
  return splits.map((ts, i) => {
    const p = parts(ts, timeZone);
    const newYear = i === 0 || p.year !== lastYear;
    lastYear = p.year;
    let label: string;
    if (unit === "hour") label = p.hm === "00:00" ? `${p.weekday} ${p.day}` : p.hm;
    else if (unit === "day") label = newYear && i > 0 ? `${p.day} ${p.month} ${p.year}` : `${p.day} ${p.month}`;
    else if (unit === "month") label = newYear || spanS > 330 * DAY_S ? `${p.month} ${p.year}` : p.month;
    else label = p.year;
    if (seen.has(label)) label = `${label} ${p.zone}`;
    seen.add(label);
    return label;
  });
}

let measurer: CanvasRenderingContext2D | null = null;

function textWidth(text: string): number {
  measurer ??= document.createElement("canvas").getContext("2d");
  if (!measurer) return text.length * 7;
  measurer.font = AXIS_FONT;
  return measurer.measureText(text).width;
}

const EDGE_PX = 24; // how far past the plot's ends a label may reach (into the chart's margin)

export interface Tick {
  t: number;
  label: string;
  left: number;
  right: number;
}

/** Blank the labels that would touch the one before (kept labels only), and those that would
 * stick out past the plot's ends (over the y axis, or clipped at the edge): a label that carries
 * its year ("1 Jan 2027") is wide, and the first or last tick of a range can sit at an end. */
export function thin(u: uPlot, splits: number[], labels: string[]): { labels: string[]; kept: Tick[] } {
  const dpr = devicePixelRatio || 1;
  const left0 = u.bbox.left / dpr;
  const right0 = left0 + u.bbox.width / dpr;
  const kept: Tick[] = [];
  const out = labels.map((label, i) => {
    const x = left0 + u.valToPos(splits[i]!, "x");
    const w = textWidth(label);
    const tick = { t: splits[i]!, label, left: x - w / 2, right: x + w / 2 };
    const prev = kept[kept.length - 1];
    const outside = tick.left < left0 - EDGE_PX || tick.right > right0 + EDGE_PX;
    if (!label || outside || (prev && tick.left < prev.right + GAP_PX)) return "";
    kept.push(tick);
    return label;
  });
  return { labels: out, kept };
}

/** The time axis: wider spacing once labels carry days or months; labels thinned so none touch. */
export function timeAxis(box: HTMLElement, stroke: string, timeZone: string | undefined): uPlot.Axis {
  return {
    stroke,
    font: AXIS_FONT,
    grid: { show: false },
    space: (_u, _i, min, max) => (max - min <= 2 * DAY_S ? 44 : max - min <= 330 * DAY_S ? 72 : 84),
    values: (u, splits, _axis, _space, incr) => {
      const span = (u.scales.x!.max ?? 0) - (u.scales.x!.min ?? 0);
      const { labels, kept } = thin(u, splits, tickLabels(splits, incr, span, timeZone));
      box.dataset.ticks = JSON.stringify(kept.map((k) => ({ ...k, left: round(k.left), right: round(k.right) })));
      return labels;
    },
  };
}

/** After each draw: the plotting area and where each non-empty value of series 1 stands. */
export function recordBars(box: HTMLElement): (u: uPlot) => void {
  return (u) => {
    const dpr = devicePixelRatio || 1;
    const left = u.bbox.left / dpr;
    box.dataset.plot = JSON.stringify({ left: round(left), right: round(left + u.bbox.width / dpr) });
    const xs = u.data[0];
    const ys = u.data[1] ?? [];
    const bars = [];
    for (let i = 0; i < xs.length; i++) if (ys[i] != null) bars.push({ t: xs[i], x: round(left + u.valToPos(xs[i]!, "x")) });
    box.dataset.bars = JSON.stringify(bars);
  };
}

/** One empty point inside each hole of the series (a step more than `widthS` wide after the one
 * before), so lines break there instead of joining across missing intervals. */
export function withHoles(xs: number[], widthS: number): number[] {
  const out: number[] = [];
  xs.forEach((x, i) => {
    const prev = xs[i - 1];
    if (prev !== undefined && x - prev > 1.5 * widthS) out.push(prev + widthS);
    out.push(x);
  });
  return out;
}

const round = (v: number) => Math.round(v * 10) / 10;
