// The planners' page: volume over a range, the hour × weekday heat map and the staffing table.
// Filters live in the address (shareable links); channels and queues come from the live document.

import "../styles/base.css";
import "../styles/planning.css";
import { explain, getJson, toSignIn } from "../lib/api";
import { byId, h, params } from "../lib/dom";
import { title } from "../lib/format";
import type { LiveDoc } from "../lib/types";
import { loadHeatmap } from "./heatmap";
import { loadStaffing } from "./staffing";
import type { Filters } from "./types";
import { loadProductivity } from "./productivity";
import { downloadVolume, loadVolume, resizeVolume, type VolumeQuery } from "./volume";

const input = (id: string) => byId<HTMLInputElement | HTMLSelectElement>(id);
let timeZone: string | undefined;
let queuesByChannel: Record<string, string[]> = {};

function localDate(offsetDays: number): string {
  const now = new Date(Date.now() + offsetDays * 86400_000);
  try {
    // en-CA formats as YYYY-MM-DD: the date in the configured zone, not the browser's.
    return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(now);
  } catch {
    return now.toISOString().slice(0, 10);
  }
}

function filters(): Filters {
  return { channel: input("channel").value, queue: input("queue").value, timeZone };
}

function volumeQuery(): VolumeQuery {
  return { ...filters(), from: input("from").value, to: input("to").value, interval: input("interval").value, groupBy: input("group-by").value };
}

function remember(): void {
  const q = new URLSearchParams();
  for (const id of ["channel", "queue", "from", "to", "interval", "group-by", "weeks", "measure", "staff-date"]) {
    const v = input(id).value;
    if (v) q.set(id, v);
  }
  history.replaceState(null, "", `${location.pathname}?${q}`);
}

async function refreshVolume(): Promise<void> {
  remember();
  await Promise.all([
    loadVolume(byId("volume"), byId("volume-body"), volumeQuery()),
    loadProductivity(byId("productivity"), byId("productivity-body"), volumeQuery()),
  ]);
}

async function refreshHeatmap(): Promise<void> {
  remember();
  await loadHeatmap(byId("heatmap"), byId("heatmap-body"), Number(input("weeks").value), input("measure").value as "mean" | "p90", filters());
}

async function refreshStaffing(): Promise<void> {
  remember();
  await loadStaffing(byId("staffing"), byId("staffing-body"), {
    ...filters(), date: input("staff-date").value, targetSl: input("target-sl").value,
    threshold: input("threshold").value, shrinkage: input("shrinkage").value,
  });
}

function fillQueues(): void {
  const select = byId<HTMLSelectElement>("queue");
  const channel = input("channel").value;
  const current = select.value;
  const names = Object.entries(queuesByChannel).filter(([c]) => !channel || c === channel).flatMap(([, qs]) => qs).sort();
  select.replaceChildren(h("option", { value: "" }, "All queues"), ...names.map((q) => h("option", { value: q }, q)));
  select.value = names.includes(current) ? current : "";
}

async function loadScopes(): Promise<void> {
  const answer = await getJson<LiveDoc>("/api/v1/live?window=24h");
  if (!answer.ok) {
    if (answer.status === 401) toSignIn();
    else if (answer.status === 403) notice(explain(answer));
    return;
  }
  timeZone = answer.data.timezone ?? timeZone;
  byId("tz").textContent = timeZone ? `Times in ${timeZone}` : "";
  queuesByChannel = {};
  for (const [name, fig] of Object.entries(answer.data.queues ?? {})) (queuesByChannel[fig.channel ?? ""] ??= []).push(name);
  const channels = Object.keys(answer.data.channels ?? {}).sort();
  byId<HTMLSelectElement>("channel").append(...channels.map((c) => h("option", { value: c }, title(c))));
  fillQueues();
}

function notice(text: string): void {
  const el = byId("notice");
  el.hidden = !text;
  el.textContent = text;
}

function restore(): void {
  const q = params();
  const defaults: Record<string, string> = { from: localDate(-6), to: localDate(0), "staff-date": localDate(1) };
  for (const id of ["channel", "queue", "from", "to", "interval", "group-by", "weeks", "measure", "staff-date"]) {
    const el = input(id);
    const value = q.get(id) ?? defaults[id];
    if (value === undefined) continue;
    if (el instanceof HTMLSelectElement && ![...el.options].some((o) => o.value === value)) el.append(h("option", { value }, value));
    el.value = value;
  }
}

async function main(): Promise<void> {
  await loadScopes();
  restore();
  fillQueues();
  const q = params().get("queue");
  if (q) input("queue").value = q;
  const on = (ids: string[], fn: () => void) => ids.forEach((id) => input(id).addEventListener("change", fn));
  on(["channel"], () => { fillQueues(); void refreshAll(); });
  on(["queue"], () => void refreshAll());
  on(["from", "to", "interval", "group-by"], () => void refreshVolume());
  on(["weeks", "measure"], () => void refreshHeatmap());
  on(["staff-date", "target-sl", "threshold", "shrinkage"], () => void refreshStaffing());
  byId("csv").addEventListener("click", async () => {
    const button = byId<HTMLButtonElement>("csv");
    button.disabled = true;
    const how = await downloadVolume(volumeQuery());
    button.disabled = false;
    button.dataset.last = how;
    notice(how.startsWith("unavailable") ? "There is nothing to download yet: the volume endpoint is not available on this server." : "");
  });
  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => resizeVolume(byId("volume-body")), 150);
  });
  await refreshAll();
  document.body.dataset.ready = "true";
}

async function refreshAll(): Promise<void> {
  await Promise.all([refreshVolume(), refreshHeatmap(), refreshStaffing()]);
}

void main();
