// The alert banner: firing alerts from the websocket ({"type":"alerts"}) or GET /api/v1/alerts.
// The alert's shape is the api's AlertView (src/lib/api-types.ts).

import { getJson } from "../lib/api";
import { h } from "../lib/dom";
import { clock, title } from "../lib/format";
import type { components } from "../lib/api-types";
import type { Alert } from "../lib/types";

let current: Alert[] = [];

export function firing(list: Alert[]): Alert[] {
  return list.filter((a) => a.state !== "resolved" && a.state !== "inactive");
}

/** GET /api/v1/alerts: the firing alerts of its answer. */
export async function loadAlerts(banner: HTMLElement, timeZone: () => string | undefined): Promise<void> {
  const answer = await getJson<components["schemas"]["AlertsDocument"]>("/api/v1/alerts");
  if (!answer.ok) return;
  renderAlerts(banner, answer.data.firing ?? [], timeZone());
}

export function renderAlerts(banner: HTMLElement, list: Alert[], timeZone: string | undefined): void {
  current = firing(Array.isArray(list) ? list : []);
  banner.hidden = current.length === 0;
  banner.dataset.count = String(current.length);
  const critical = current.some((a) => /crit|page|high/i.test(String(a.severity ?? "")));
  banner.dataset.status = critical ? "critical" : "warning";
  banner.replaceChildren(
    h("span", { class: "alert-icon", "aria-hidden": "true" }, "▲"),
    h("ul", {}, ...current.map((a) => line(a, timeZone))),
  );
}

function line(a: Alert, timeZone: string | undefined) {
  const name = a.name ?? a.rule ?? a.metric ?? "alert";
  const scope = [a.channel, a.queue].filter(Boolean).join(" / ");
  const value = typeof a.value === "number" ? numberish(a.metric ?? a.name ?? "", a.value) : "";
  const limit = typeof a.threshold === "number" ? ` (limit ${numberish(a.metric ?? a.name ?? "", a.threshold)})` : "";
  const since = a.started_at;
  return h("li", { "data-alert": String(a.id ?? name), "data-severity": String(a.severity ?? "") },
    a.severity ? h("b", { class: "sev" }, String(a.severity).toUpperCase()) : null,
    ` ${title(String(name))}`,
    scope ? h("span", { class: "scope" }, ` · ${scope}`) : null,
    value ? ` · ${value}${limit}` : null,
    since ? h("span", { class: "since" }, ` since ${clock(new Date(since), timeZone, false)}`) : null);
}

function numberish(metric: string, v: number): string {
  if (/rate|level|fcr|occupancy/i.test(metric) && v <= 1) return `${(v * 100).toFixed(1)}%`;
  if (/seconds|wait/i.test(metric)) return `${Math.round(v)}s`;
  return String(Math.round(v * 100) / 100);
}
