// Answer-time distribution per channel (answered and abandoned by wait, with the SL threshold
// marked) and first-response buckets for written channels.

import { BarChart, cssVar } from "../lib/barchart";
import { h } from "../lib/dom";
import { bucketLabel, count, edge, shortSeconds, title } from "../lib/format";
import type { Figures, LiveDoc } from "../lib/types";
import { channelOrder } from "./tiles";

const WRITTEN = new Set(["chat", "email", "sms", "social"]);
const FIRST_RESPONSE_LABELS: Record<string, string> = {
  under_1h: "<1h", "1h_2h": "1–2h", "2h_6h": "2–6h", "6h_12h": "6–12h", "12h_24h": "12–24h", over_24h: ">24h",
};

interface Slot {
  root: HTMLElement;
  chart: BarChart;
  total: HTMLElement;
  threshold: number;
  keys: string[];
}

const slots = new Map<string, Slot>();

function slot(container: HTMLElement, id: string, channel: string, kind: string, make: (box: HTMLElement) => BarChart): Slot {
  let s = slots.get(id);
  if (!s) {
    const box = h("div", { class: "chart-box" });
    const total = h("span", { class: "muted" });
    const root = h("figure", { class: "chart", "data-chart": kind, "data-channel": channel },
      h("figcaption", {}, h("b", {}, title(channel)), " ", total), box);
    container.append(root);
    s = { root, chart: make(box), total, threshold: 0, keys: [] };
    slots.set(id, s);
  }
  return s;
}

function prune(container: HTMLElement, keep: Set<string>, prefix: string): void {
  for (const [id, s] of slots) {
    if (id.startsWith(prefix) && !keep.has(id)) {
      s.chart.destroy();
      s.root.remove();
      slots.delete(id);
    }
  }
  container.querySelector(".empty")?.remove();
  if (!keep.size) container.append(h("p", { class: "empty" }, "No answered contacts in this window."));
}

/** The buckets around the data and the SL threshold: an email chart need not start at 5 s. */
function visibleKeys(fig: Figures): string[] {
  const keys = Object.keys(fig.answered_within ?? {});
  const threshold = fig.service_level_threshold_seconds ?? 0;
  const marker = keys.findIndex((k) => edge(k) >= threshold);
  let [first, last] = [Math.max(0, marker), Math.min(keys.length - 1, marker + 1)];
  keys.forEach((k, i) => {
    if ((fig.answered_within?.[k] ?? 0) + (fig.abandoned_within?.[k] ?? 0) > 0) {
      first = Math.min(first, i);
      last = Math.max(last, i);
    }
  });
  return keys.slice(Math.max(0, first - 1), last + 1);
}

export function renderAnswerCharts(container: HTMLElement, doc: LiveDoc): void {
  const keep = new Set<string>();
  for (const channel of Object.keys(doc.channels).sort(channelOrder)) {
    const fig = doc.channels[channel]!;
    if (!fig.answered_within || !(fig.answered || fig.abandoned)) continue;
    const id = `aw:${channel}`;
    keep.add(id);
    const keys = visibleKeys(fig);
    const threshold = fig.service_level_threshold_seconds ?? 0;
    const s = slot(container, id, channel, "answered_within", (box) => new BarChart(box, [
      { label: "answered", color: cssVar(container, "--accent", "#4c9aff") },
      { label: "abandoned", color: cssVar(container, "--critical", "#f85149") },
    ], { marker: () => ({ after: s.keys.findIndex((k) => edge(k) >= s.threshold), label: `SL ${shortSeconds(s.threshold)}` }) }));
    s.threshold = threshold;
    s.keys = keys;
    s.root.dataset.value = JSON.stringify(fig.answered_within);
    s.total.textContent = `${count(fig.answered)} answered · ${count(fig.abandoned)} abandoned, by wait`;
    s.chart.update(keys.map((k, i) => bucketLabel(k, keys[i - 1] ?? k)),
      [keys.map((k) => fig.answered_within?.[k] ?? 0), keys.map((k) => fig.abandoned_within?.[k] ?? 0)]);
  }
  prune(container, keep, "aw:");
}

export function renderFirstResponse(container: HTMLElement, doc: LiveDoc): void {
  const keep = new Set<string>();
  for (const channel of Object.keys(doc.channels).sort(channelOrder)) {
    const fig = doc.channels[channel]!;
    const buckets = fig.first_response_buckets;
    if (!buckets || !WRITTEN.has(channel) || !Object.values(buckets).some((n) => n > 0)) continue;
    const id = `fr:${channel}`;
    keep.add(id);
    const s = slot(container, id, channel, "first_response_buckets", (box) => new BarChart(box, [
      { label: "first responses", color: cssVar(container, "--accent-2", "#a371f7") },
    ]));
    s.root.dataset.value = JSON.stringify(buckets);
    const keys = Object.keys(buckets);
    s.total.textContent = `${count(fig.answered)} first responses`;
    s.chart.update(keys.map((k) => FIRST_RESPONSE_LABELS[k] ?? k), [keys.map((k) => buckets[k] ?? 0)]);
  }
  prune(container, keep, "fr:");
  const empty = container.querySelector(".empty");
  if (empty) empty.textContent = "No first responses on written channels (chat, email, SMS, social) in this window.";
}
