// The planners' endpoints (issue 7). Fields may be missing or null; the page shows what it gets.

export interface VolumeRow {
  start: string;
  end?: string;
  channel?: string;
  queue?: string;
  offered?: number;
  answered?: number;
  abandoned?: number;
  abandon_rate?: number | null;
  service_level?: number | null;
  asa_seconds?: number | null;
  aht_seconds?: number | null;
  partial?: boolean;
  [more: string]: unknown;
}

export interface Volume {
  rows: VolumeRow[];
  [more: string]: unknown;
}

export interface HeatCell {
  weekday: number; // Monday = 0
  hour: number;
  mean?: number | null;
  p90?: number | null;
}

export interface Heatmap {
  weeks?: number;
  cells: HeatCell[];
}

export interface StaffRow {
  start: string;
  end?: string;
  forecast_offered?: number | null;
  aht_seconds?: number | null;
  agents_erlang_c?: number | null;
  agents_erlang_a?: number | null;
  expected_sl?: number | null;
  [more: string]: unknown;
}

export interface Staffing {
  date?: string;
  rows: StaffRow[];
  [more: string]: unknown;
}

export interface Filters {
  channel: string;
  queue: string;
  timeZone: string | undefined;
}
