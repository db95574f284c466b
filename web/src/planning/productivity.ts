// Agent productivity over the volume's range: handled, logged-in hours, handled per logged-in
// hour and cost per handled contact per agent (docs/metrics.md#cost), summed over the days.

import { getJson } from "../lib/api";
import { h } from "../lib/dom";
import { count } from "../lib/format";
import { empty, query, setState, unavailable } from "./panel";
import type { Productivity, ProductivityRow } from "./types";
import { money, nextDay, type VolumeQuery } from "./volume";

interface AgentTotal {
  agent: string;
  handled: number;
  hours: number;
  cost: number | null;
}

export function totalsByAgent(rows: ProductivityRow[]): AgentTotal[] {
  const out = new Map<string, AgentTotal>();
  for (const r of rows) {
    const t = out.get(r.agent) ?? { agent: r.agent, handled: 0, hours: 0, cost: 0 };
    t.handled += r.handled;
    t.hours += r.logged_in_hours ?? 0;
    t.cost = t.cost === null || r.labour_cost === null ? null : t.cost + r.labour_cost;
    out.set(r.agent, t);
  }
  return [...out.values()].sort((a, b) => (b.hours ? b.handled / b.hours : 0) - (a.hours ? a.handled / a.hours : 0) || a.agent.localeCompare(b.agent));
}

export async function loadProductivity(panel: HTMLElement, body: HTMLElement, q: VolumeQuery): Promise<void> {
  setState(panel, "loading");
  const path = `/api/v1/productivity?${query({ interval: "1d", from: `${q.from}T00:00:00`, to: `${nextDay(q.to)}T00:00:00`, tz: q.timeZone })}`;
  const answer = await getJson<Productivity>(path, 20_000);
  if (!answer.ok) {
    unavailable(panel, body, "Agent productivity", "GET /api/v1/productivity", answer.status, answer.message);
    return;
  }
  const agents = totalsByAgent(answer.data.rows);
  if (!agents.length) {
    empty(panel, body, "No agent logged in during this range.");
    return;
  }
  setState(panel, "ready");
  const { configured, currency } = answer.data.cost;
  const head = h("tr", {}, h("th", { scope: "col" }, "Agent"),
    ...["Handled", "Logged-in hours", "Handled per hour", "Cost per handled"].map((t) => h("th", { scope: "col", class: "num" }, t)));
  const rows = agents.map((a) => h("tr", { "data-agent": a.agent },
    h("td", {}, a.agent),
    h("td", { class: "num", "data-field": "handled" }, count(a.handled)),
    h("td", { class: "num", "data-field": "logged_in_hours" }, a.hours.toFixed(1)),
    h("td", { class: "num", "data-field": "handled_per_logged_in_hour" }, a.hours ? (a.handled / a.hours).toFixed(2) : "—"),
    h("td", { class: "num", "data-field": "cost_per_handled" },
      configured && a.cost !== null && a.handled ? money(a.cost / a.handled, currency) : "—")));
  body.replaceChildren(
    configured ? h("span", {}) : h("p", { class: "muted" }, "No hourly cost is set (CCPULSE_COST_PER_HOUR): hours and productivity only."),
    h("div", { class: "table-wrap scroll", tabindex: "0", "aria-label": "Agents" }, h("table", { class: "data", id: "productivity-rows" }, h("thead", {}, head), h("tbody", {}, ...rows))));
}
