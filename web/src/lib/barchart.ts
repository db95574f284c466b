// Category bar charts on uPlot (canvas, ~50 kB): one instance per chart, updated with setData
// so a once-a-second feed costs one redraw, and resized with its box.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface BarSeries {
  label: string;
  color: string;
}

export interface BarOptions {
  height?: number;
  /** Draw a dashed marker after this category index (e.g. the service-level threshold). */
  marker?: () => { after: number; label: string } | null;
  yFormat?: (v: number) => string;
}

export function cssVar(el: Element, name: string, fallback: string): string {
  return getComputedStyle(el).getPropertyValue(name).trim() || fallback;
}

export class BarChart {
  private plot: uPlot | null = null;
  private labels: string[] = [];
  private observer: ResizeObserver;

  constructor(private readonly box: HTMLElement, private readonly series: BarSeries[], private readonly opts: BarOptions = {}) {
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(box);
  }

  update(labels: string[], values: number[][]): void {
    this.labels = labels;
    const data: uPlot.AlignedData = [labels.map((_, i) => i), ...values];
    if (!this.plot) this.plot = new uPlot(this.options(), data, this.box);
    else this.plot.setData(data);
  }

  destroy(): void {
    this.observer.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }

  private size(): { width: number; height: number } {
    const width = Math.max(200, Math.floor(this.box.clientWidth));
    const height = this.opts.height ?? Math.max(120, Math.floor(this.box.clientHeight) - 28);
    return { width, height };
  }

  private resize(): void {
    if (!this.plot) return;
    const next = this.size();
    if (Math.abs(next.width - this.plot.width) > 2 || Math.abs(next.height - this.plot.height) > 2) this.plot.setSize(next);
  }

  private options(): uPlot.Options {
    const fg = cssVar(this.box, "--muted", "#8b98a5");
    const grid = cssVar(this.box, "--grid", "rgba(128,128,128,.15)");
    const font = `${cssVar(this.box, "--chart-font-size", "12px")} system-ui, sans-serif`;
    const n = this.series.length;
    const width = n > 1 ? 0.8 / n : 0.7;
    return {
      ...this.size(),
      padding: [8, 8, 0, 0],
      legend: { show: n > 1, live: false },
      cursor: { show: false },
      scales: { x: { time: false, range: (_u, min, max) => [min - 0.5, max + 0.5] }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [
        { stroke: fg, font, grid: { show: false }, ticks: { show: false }, splits: () => this.labels.map((_, i) => i),
          values: (u, splits) => {
            // Thin the labels out when they would touch: every k-th one, k from the space per bar.
            const room = u.bbox.width / (devicePixelRatio || 1) / Math.max(1, this.labels.length);
            const every = Math.max(1, Math.ceil(44 / room));
            return splits.map((i) => (i % every === 0 ? this.labels[i] ?? "" : ""));
          } },
        { stroke: fg, font, grid: { stroke: grid, width: 1 }, ticks: { show: false }, size: 48,
          values: (_u, splits) => splits.map((v) => (this.opts.yFormat ? this.opts.yFormat(v) : compact(v))) },
      ],
      series: [
        {},
        ...this.series.map((s, i) => ({
          label: s.label,
          stroke: s.color,
          fill: s.color,
          width: 0,
          points: { show: false },
          paths: uPlot.paths.bars!({ size: [width, 120], align: n > 1 ? (i === 0 ? -1 : 1) as -1 | 1 : 0 }),
        })),
      ],
      hooks: { draw: [(u) => this.drawMarker(u, fg)] },
    };
  }

  private drawMarker(u: uPlot, color: string): void {
    const marker = this.opts.marker?.();
    if (!marker || marker.after < 0 || marker.after >= this.labels.length - 1) return;
    const x = Math.round(u.valToPos(marker.after + 0.5, "x", true));
    const { ctx } = u;
    const dpr = devicePixelRatio || 1;
    ctx.save();
    ctx.strokeStyle = color;
    ctx.setLineDash([4 * dpr, 4 * dpr]);
    ctx.lineWidth = dpr;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = color;
    ctx.font = `${11 * dpr}px system-ui, sans-serif`;
    ctx.fillText(marker.label, x + 4 * dpr, u.bbox.top + 12 * dpr);
    ctx.restore();
  }
}

export function compact(v: number): string {
  if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
