// The shapes the pages read. Every field is optional in practice: other issues add fields and an
// older api may lack some, so code reads them through `num()` / `obj()` and tolerates absence.

export type Num = number | null | undefined;

export interface FunnelStage {
  stage: string;
  entered: number;
  abandoned: number;
  went_on: number;
}

export interface Figures {
  offered?: number;
  queued?: number;
  answered?: number;
  abandoned?: number;
  abandoned_queue?: number;
  abandoned_ivr?: number;
  short_abandoned?: number;
  abandoned_by_stage?: Record<string, number>;
  timed_out?: number;
  transferred?: number;
  handled?: number;
  asa_seconds?: Num;
  aht_seconds?: Num;
  abandon_rate?: Num;
  service_level?: Num;
  service_level_threshold_seconds?: number;
  answered_within?: Record<string, number>;
  abandoned_within?: Record<string, number>;
  ivr_funnel?: FunnelStage[];
  first_response_buckets?: Record<string, number>;
  resolved?: number;
  fcr_rate?: Num;
  fcr_measured_rate?: Num;
  fcr_measured_resolved?: number;
  csat?: Num;
  nps?: Num;
  in_queue?: number;
  longest_wait_seconds?: number;
  active?: number;
  occupancy?: Num;
  channel?: string;
  [more: string]: unknown;
}

export interface Agent {
  answered?: number;
  handled?: number;
  aht_seconds?: Num;
  asa_seconds?: Num;
  resolved?: number;
  transferred?: number;
  state?: string | null;
  state_reason?: string | null; // why not ready (a pause reason, a custom activity's name)
  state_since?: string;
  state_seconds?: number;
  occupancy?: Num;
  queue?: string;
  queues?: string[];
  [more: string]: unknown;
}

export interface LiveDoc {
  as_of: string;
  window: string;
  from: string;
  to: string;
  timezone?: string;
  fcr_measured_provisional?: boolean;
  channels: Record<string, Figures>;
  queues: Record<string, Figures>;
  agents: Record<string, Agent>;
  agent_states?: Record<string, number>;
  alerts?: Alert[];
}

export interface Alert {
  id?: string;
  name?: string;
  rule?: string;
  severity?: string;
  state?: string;
  status?: string;
  channel?: string;
  queue?: string;
  scope?: string | Record<string, string>;
  metric?: string;
  value?: Num;
  threshold?: Num;
  summary?: string;
  message?: string;
  description?: string;
  started_at?: string;
  since?: string;
  [more: string]: unknown;
}

export interface ThresholdPair {
  warning: number;
  critical: number;
}

export type Thresholds = Record<string, ThresholdPair>;

/** GET /api/v1/config (when it exists); everything optional. */
export interface Config {
  timezone?: string;
  thresholds?: Thresholds;
  channels?: Record<string, { thresholds?: Thresholds }>;
  queues?: Record<string, { thresholds?: Thresholds }>;
}
