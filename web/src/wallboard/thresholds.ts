// ok / warning / critical for a figure. Thresholds come from GET /api/v1/config (the api's
// CCPULSE_WALLBOARD_THRESHOLDS); otherwise the defaults below.
// Direction is read from the pair itself: critical below warning means "lower is worse".

import type { Config, FigureName, Figures, ThresholdPair, Thresholds } from "../lib/types";

export type Status = "ok" | "warning" | "critical";

export const DEFAULTS: Thresholds = {
  service_level: { warning: 0.8, critical: 0.7 },
  abandon_rate: { warning: 0.05, critical: 0.1 },
  longest_wait_seconds: { warning: 60, critical: 120 },
};

let config: Config | null = null;

export function useConfig(next: Config): void {
  config = next ?? null;
}

/** The pair in force for a figure: the queue's own (api: `queue_thresholds["channel|queue"]`),
 * else the channel's (`channel_thresholds`, where the api already keeps the longest wait at or
 * above the channel's service-level threshold), else the global one, else the defaults. */
export function pairFor(field: string, channel?: string, queue?: string, fig?: Figures): ThresholdPair | undefined {
  const scoped = [
    channel && queue ? config?.queue_thresholds?.[`${channel}|${queue}`]?.[field] : undefined,
    channel ? config?.channel_thresholds?.[channel]?.[field] : undefined,
  ].map(complete).find((p) => p !== undefined);
  if (scoped) return scoped;
  const g = complete(config?.thresholds[field]);
  const pair = g ?? DEFAULTS[field];
  if (field === "longest_wait_seconds" && pair) return waitDefault(pair, fig);
  return pair;
}

function complete(set: { [k: string]: number } | undefined): ThresholdPair | undefined {
  return typeof set?.warning === "number" && typeof set.critical === "number"
    ? { warning: set.warning, critical: set.critical } : undefined;
}

/** A written channel's target is hours, not seconds: never warn before its own SL threshold. */
function waitDefault(pair: ThresholdPair, fig?: Figures): ThresholdPair {
  const target = fig?.service_level_threshold_seconds ?? 0;
  return { warning: Math.max(pair.warning, target), critical: Math.max(pair.critical, 2 * target) };
}

export function statusOf(value: unknown, pair: ThresholdPair | undefined): Status | null {
  if (!pair || typeof value !== "number" || !Number.isFinite(value)) return null;
  const lowerIsWorse = pair.critical < pair.warning;
  const beyond = (limit: number) => (lowerIsWorse ? value < limit : value > limit);
  if (beyond(pair.critical)) return "critical";
  if (beyond(pair.warning)) return "warning";
  return "ok";
}

export function figureStatus(fig: Figures, field: FigureName, channel?: string, queue?: string): Status | null {
  return statusOf(fig[field], pairFor(field, channel, queue, fig));
}

const RANK: Record<Status, number> = { ok: 0, warning: 1, critical: 2 };

export function worst(statuses: (Status | null)[]): Status | null {
  let out: Status | null = null;
  for (const s of statuses) if (s && (!out || RANK[s] > RANK[out])) out = s;
  return out;
}

export function describe(field: string, channel?: string, queue?: string, fig?: Figures): string {
  const pair = pairFor(field, channel, queue, fig);
  if (!pair) return "";
  const fmt = (v: number) => (field.endsWith("_seconds") ? `${v}s` : `${Math.round(v * 1000) / 10}%`);
  const sign = pair.critical < pair.warning ? "<" : ">";
  return `warning ${sign} ${fmt(pair.warning)}, critical ${sign} ${fmt(pair.critical)}`;
}
