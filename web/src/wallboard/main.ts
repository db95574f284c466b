// The wallboard: one websocket for liveness, the 15-minute document and today's totals (read at
// the same instant); REST for other windows. Renders in place every update and ticks clocks every second.

import "../styles/base.css";
import "../styles/wallboard.css";
import { explain, getJson, toSignIn } from "../lib/api";
import { byId, params, setText } from "../lib/dom";
import { clock, day, windowLabel } from "../lib/format";
import type { Config, LiveDoc, TodayTotals } from "../lib/types";
import { mountAgents, renderAgents, renderStateSummary, tickAgents } from "./agents";
import { loadAlerts, renderAlerts } from "./alerts";
import { renderAnswerCharts, renderFirstResponse } from "./charts";
import { Connection, STALE_MS, type Link } from "./connection";
import { renderFunnels } from "./funnel";
import { renderQueues } from "./queues";
import { renderScopeAgents, tickScopeAgents } from "./scopeagents";
import { useConfig } from "./thresholds";
import { enableDrillDown } from "./drill";
import { renderTiles, tickTiles, type Today } from "./tiles";
import { TvScreen } from "./tv";
import { startWorklist } from "./worklist";

const WINDOWS = ["5m", "15m", "30m", "1h", "4h", "24h", "today"];
const LIVE_WINDOW = "15m"; // what the websocket carries
const TODAY_EVERY_MS = 5_000;
const WINDOW_EVERY_MS = 2_000;

const query = params();
const tv = query.get("tv") === "1" || query.get("tv") === "true";
const chosen = WINDOWS.includes(query.get("window") ?? "") ? query.get("window")! : LIVE_WINDOW;
const focusQueue = query.get("queue"); // an alert's link: /?channel=voice&queue=sales
let focusShown = false;

let doc: LiveDoc | null = null;
let today: Today | null = null;
let link: Link = "connecting";
let retryAt = 0;
let timeZone: string | undefined;
let rotator: TvScreen | null = null;
const lastFetch: Record<string, number> = {};
const inFlight = new Set<string>();

function render(next: LiveDoc): void {
  doc = next;
  timeZone = next.timezone ?? timeZone;
  document.body.dataset.window = next.window;
  document.body.dataset.asOf = next.as_of;
  setText(byId("window-label"), windowLabel(next.window));
  renderTiles(byId("tiles"), next, next.window === "today" ? next : today);
  renderQueues(byId("queues-body"), next, focusQueue);
  showFocus();
  renderFunnels(byId("funnels"), next);
  renderAnswerCharts(byId("answer-charts"), next);
  renderFirstResponse(byId("fr-charts"), next);
  renderAgents(next);
  renderScopeAgents(byId("agent-scopes"), next);
  renderStateSummary(byId("agent-summary"), next);
  markEmpty();
  rotator?.refresh();
  tick();
}

/** Once, when the alert's queue first has a row: bring it into view. */
function showFocus(): void {
  if (focusShown || !focusQueue) return;
  const row = document.querySelector(`#queues-body tr[data-key="${CSS.escape(focusQueue)}"]`);
  if (!row) return;
  focusShown = true;
  row.scrollIntoView({ block: "center" });
}

/** Views with nothing to show step aside (on a TV they would waste the secondary panel). */
function markEmpty(): void {
  const empty: Record<string, boolean> = {
    queues: !Object.keys(doc?.queues ?? {}).length,
    funnel: !document.querySelector("#funnels .funnel"),
    "first-response": !document.querySelector("#fr-charts .chart"),
    agents: !Object.keys(doc?.agents ?? {}).length,
  };
  for (const [view, isEmpty] of Object.entries(empty)) {
    const el = document.querySelector<HTMLElement>(`[data-view="${view}"]`);
    if (!el) continue;
    if (isEmpty) el.dataset.empty = "1";
    else delete el.dataset.empty;
  }
}

/** REST for a window the socket does not carry; at most one request in flight per window. */
async function fetchWindow(window: string, every: number): Promise<LiveDoc | null> {
  if (inFlight.has(window) || Date.now() - (lastFetch[window] ?? 0) < every) return null;
  inFlight.add(window);
  lastFetch[window] = Date.now();
  try {
    const answer = await getJson<LiveDoc>(`/api/v1/live?window=${encodeURIComponent(window)}`);
    if (answer.ok) return answer.data;
    notice(explain(answer));
    return null;
  } finally {
    inFlight.delete(window);
  }
}

async function onDoc(next: LiveDoc, pushed?: TodayTotals): Promise<void> {
  if (pushed) today = pushed; // the same instant as `next`: "today" never lags the window
  if (chosen === LIVE_WINDOW) render(next);
  else {
    const other = await fetchWindow(chosen, WINDOW_EVERY_MS);
    if (other) render(other);
  }
  if (chosen !== "today" && !pushed) {
    const t = await fetchWindow("today", TODAY_EVERY_MS); // an api without pushed totals
    if (t) {
      today = t;
      if (doc) renderTiles(byId("tiles"), doc, today);
    }
  }
}

function onLink(next: Link, retryInMs?: number): void {
  link = next;
  retryAt = retryInMs ? Date.now() + retryInMs : 0;
  if (next === "live") notice("");
  tick();
}

async function onNeverOpened(): Promise<void> {
  // The handshake was refused or the api is down: a REST call tells which, in words.
  const answer = await getJson<LiveDoc>("/api/v1/live?window=5m", 5000);
  if (answer.status === 401) return toSignIn();
  notice(answer.ok ? "" : explain(answer));
}

function notice(text: string): void {
  const el = byId("notice");
  el.hidden = !text;
  setText(el, text);
}

function tick(): void {
  const now = new Date();
  setText(byId("clock"), clock(now, timeZone));
  setText(byId("date"), day(now, timeZone));
  setText(byId("tz"), timeZone ?? "");
  const stale = !conn.lastMessageAt || conn.isStale();
  const state = stale && conn.lastMessageAt ? "stale" : link === "live" ? "live" : link;
  document.body.dataset.stale = String(stale && !!conn.lastMessageAt);
  const pill = byId("link");
  pill.dataset.link = state;
  setText(byId("link-text"), linkText(state));
  const banner = byId("stale-banner");
  banner.hidden = !(stale && conn.lastMessageAt);
  if (!banner.hidden) setText(byId("stale-text"), staleText());
  const asOf = doc ? new Date(doc.as_of) : null;
  setText(byId("as-of"), asOf ? `data as of ${clock(asOf, timeZone)}` : "waiting for data");
  tickTiles(stale);
  tickAgents(stale);
  tickScopeAgents(byId("agent-scopes"), stale);
}

function linkText(state: string): string {
  const retry = retryAt > Date.now() ? ` in ${Math.ceil((retryAt - Date.now()) / 1000)}s` : "";
  switch (state) {
    case "live": return "Live";
    case "stale": return "Stale";
    case "reconnecting": return `Reconnecting${retry}`;
    case "unavailable": return "Data source unavailable";
    default: return "Connecting…";
  }
}

function staleText(): string {
  const ago = Math.round((Date.now() - conn.lastMessageAt) / 1000);
  const when = doc ? clock(new Date(doc.as_of), timeZone) : "";
  const what = link === "live" ? "the api is connected but sends nothing" :
    link === "unavailable" ? "the api cannot read live data" : "reconnecting to the api";
  return `No update for ${ago}s — figures from ${when} are NOT current (${what}).`;
}

const conn = new Connection({ onDoc: (d, _kind, t) => {
  document.body.dataset.seq = String(conn.seq);
  void onDoc(d, t);
}, onAlerts: (a) => renderAlerts(byId("alerts"), a, timeZone), onLink, onNeverOpened: () => void onNeverOpened() });

async function main(): Promise<void> {
  Object.assign(window, { ccpulseState: () => conn.state() }); // for tests: the state we rebuilt
  document.body.classList.toggle("tv", tv);
  document.body.dataset.staleAfter = String(STALE_MS);
  const select = byId<HTMLSelectElement>("window");
  select.value = chosen;
  select.addEventListener("change", () => {
    const next = new URLSearchParams(location.search);
    next.set("window", select.value);
    location.search = next.toString();
  });
  byId<HTMLAnchorElement>("tv-link").href = `/?tv=1${chosen !== LIVE_WINDOW ? `&window=${chosen}` : ""}`;
  mountAgents(byId<HTMLTableElement>("agents-table"), byId("agent-controls"), () => rotator?.refresh());
  if (!tv) enableDrillDown(byId("tiles"), () => timeZone);
  if (tv) {
    const seconds = Math.max(3, Number(query.get("rotate") ?? 15) || 15);
    rotator = new TvScreen(byId("views"), byId("dots"), seconds);
    rotator.start();
    document.addEventListener("dblclick", () => void document.documentElement.requestFullscreen?.().catch(() => {}));
  }
  const config = await getJson<Config>("/api/v1/config", 5000);
  if (config.ok) {
    useConfig(config.data);
    timeZone = config.data.timezone ?? timeZone;
  }
  void loadAlerts(byId("alerts"), () => timeZone);
  startWorklist(byId("views").querySelector<HTMLElement>('[data-view="worklist"]')!, chosen, () => timeZone, () => rotator?.refresh());
  conn.start();
  window.setInterval(tick, 1000);
  tick();
}

void main();
