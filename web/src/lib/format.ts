// Formatting for people across a room: short, unambiguous, "–" where there is no data.

import type { Num } from "./types";

export const NONE = "–";

const grouped = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });

export function count(v: Num): string {
  return typeof v === "number" && Number.isFinite(v) ? grouped.format(v) : NONE;
}

export function pct(v: Num, digits = 1): string {
  if (typeof v !== "number" || !Number.isFinite(v)) return NONE;
  return `${(100 * v).toFixed(digits)}%`;
}

/** 0:23, 4:05, 1h 02m, 2d 03h: minutes and seconds read like a clock below an hour. */
export function duration(v: Num): string {
  if (typeof v !== "number" || !Number.isFinite(v)) return NONE;
  const s = Math.max(0, Math.round(v));
  if (s < 3600) return `${Math.floor(s / 60)}:${pad(s % 60)}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d ${pad(Math.floor(s / 3600) % 24)}h`;
}

/** Wait-bucket labels: le_20 -> "≤20s", le_3600 -> "≤1h", le_inf -> ">2d". */
export function bucketLabel(key: string, previous?: string): string {
  if (key === "le_inf") return previous ? `>${shortSeconds(edge(previous))}` : "more";
  return `≤${shortSeconds(edge(key))}`;
}

export function edge(key: string): number {
  return key === "le_inf" ? Infinity : Number(key.slice(3));
}

export function shortSeconds(s: number): string {
  if (s < 120) return `${s}s`;
  if (s < 3600) return s % 60 ? `${Math.floor(s / 60)}m${s % 60}s` : `${s / 60}m`;
  if (s < 86400) return `${s / 3600}h`;
  return `${s / 86400}d`;
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

export function clock(date: Date, timeZone: string | undefined, seconds = true): string {
  try {
    return new Intl.DateTimeFormat("en-GB", {
      timeZone,
      hour: "2-digit",
      minute: "2-digit",
      second: seconds ? "2-digit" : undefined,
      hour12: false,
    }).format(date);
  } catch {
    return date.toISOString().slice(11, seconds ? 19 : 16);
  }
}

export function day(date: Date, timeZone: string | undefined): string {
  try {
    return new Intl.DateTimeFormat("en-GB", {
      timeZone,
      weekday: "short",
      day: "numeric",
      month: "short",
    }).format(date);
  } catch {
    return date.toISOString().slice(0, 10);
  }
}

const ACRONYMS: Record<string, string> = { sms: "SMS", ivr: "IVR", acw: "ACW" };

export function title(name: string): string {
  return ACRONYMS[name.toLowerCase()] ?? name.replace(/_/g, " ").replace(/^\w/, (c) => c.toUpperCase());
}

export function windowLabel(w: string): string {
  const names: Record<string, string> = {
    "5m": "last 5 min",
    "15m": "last 15 min",
    "30m": "last 30 min",
    "1h": "last hour",
    "4h": "last 4 hours",
    "24h": "last 24 hours",
    today: "today",
  };
  return names[w] ?? w;
}
