// Agents per channel and per queue on the agents panel: how many are available, on a contact, in
// after-contact work, not ready (by reason) and offline, with the longest and the total time in
// their current state (the live document's `agents` of each scope, docs/metrics.md). Times tick
// every second between updates, as the agent rows do.

import { h, setText } from "../lib/dom";
import { count, duration, title } from "../lib/format";
import type { Figures, LiveDoc } from "../lib/types";
import { channelOrder } from "./tiles";

type Summary = NonNullable<Figures["agents"]>;
type Bucket = keyof Summary["current_state_seconds"];

const STATES: [Bucket, string, string][] = [
  ["available", "Available", "avail"],
  ["on_contact", "On contact", "busy"],
  ["after_contact_work", "After-contact work", "wrap"],
  ["not_ready", "Not ready", "aux"],
  ["offline", "Offline", "off"],
];

let receivedAt = 0;

interface Scope {
  kind: "channel" | "queue";
  name: string;
  channel: string;
  agents: Summary;
}

function scopes(doc: LiveDoc): Scope[] {
  const out: Scope[] = [];
  const channels = Object.keys(doc.channels ?? {}).sort(channelOrder);
  for (const channel of channels) {
    const agents = doc.channels[channel]?.agents;
    if (agents) out.push({ kind: "channel", name: channel, channel, agents });
    const queues = Object.entries(doc.queues ?? {}).filter(([, q]) => q.channel === channel).sort(([a], [b]) => a.localeCompare(b));
    for (const [name, q] of queues) if (q.agents) out.push({ kind: "queue", name, channel, agents: q.agents });
  }
  return out;
}

function hasAgents(a: Summary): boolean {
  return STATES.some(([b]) => a[b] > 0);
}

/** What the live document's figures are read back as by tests: data-scope, data-field, data-value. */
function figure(s: Scope, field: string, value: unknown, text: string, tag: "b" | "span" = "b"): HTMLElement {
  const where = s.kind === "channel" ? { "data-channel": s.name } : { "data-queue": s.name, "data-channel": s.channel };
  return h(tag, { "data-scope": s.kind, ...where, "data-field": field, "data-window": "now", "data-value": JSON.stringify(value) }, text);
}

function timing(state: Bucket, n: number, longest: number | null, total: number): HTMLElement {
  const el = h("span", {
    class: "in-state", "data-state-time": state, "data-count": String(n),
    "data-longest": JSON.stringify(longest), "data-total": String(total),
  });
  el.append(timingText(n, longest, total, 0));
  return el;
}

function timingText(n: number, longest: number | null, total: number, elapsed: number): string {
  if (!n || longest === null) return "";
  if (n === 1) return `for ${duration(longest + elapsed)}`;
  return `longest ${duration(longest + elapsed)} · ${duration(total + n * elapsed)} in all`;
}

function card(s: Scope): HTMLElement {
  const a = s.agents;
  const rows = STATES.flatMap(([bucket, label, cls]) => {
    const time = a.current_state_seconds[bucket];
    const dd = h("dd", {}, figure(s, `agents.${bucket}`, a[bucket], count(a[bucket])), " ",
      timing(bucket, a[bucket], time.longest_seconds, time.total_seconds));
    if (bucket === "not_ready" && a.not_ready) {
      const reasons = Object.entries(a.not_ready_by_reason).sort(([x, m], [y, n]) => n - m || x.localeCompare(y));
      dd.append(h("br"), figure(s, "agents.not_ready_by_reason", a.not_ready_by_reason,
        reasons.map(([r, k]) => `${r} ${k}`).join(", "), "span"));
    }
    return [h("dt", { "data-state": cls }, label), dd];
  });
  const head = s.kind === "channel" ? h("h3", {}, title(s.name), " ", h("small", {}, "channel"))
    : h("h3", {}, s.name, " ", h("small", {}, title(s.channel)));
  return h("article", { class: `scope-card ${s.kind}`, "data-card": `${s.kind}:${s.name}` }, head, h("dl", {}, ...rows));
}

export function renderScopeAgents(el: HTMLElement, doc: LiveDoc): void {
  receivedAt = Date.now();
  const shown = scopes(doc).filter((s) => hasAgents(s.agents));
  el.hidden = shown.length === 0;
  el.replaceChildren(...shown.map(card));
}

/** Between updates every agent stays in its state a second longer each second (not when stale). */
export function tickScopeAgents(el: HTMLElement, stale: boolean): void {
  if (!receivedAt) return;
  const elapsed = stale ? 0 : (Date.now() - receivedAt) / 1000;
  for (const span of Array.from(el.querySelectorAll<HTMLElement>(".in-state"))) {
    const longest = JSON.parse(span.dataset.longest ?? "null") as number | null;
    setText(span, timingText(Number(span.dataset.count), longest, Number(span.dataset.total), elapsed));
  }
}
