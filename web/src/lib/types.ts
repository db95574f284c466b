// The shapes the pages read: the api's own documents, generated from its OpenAPI description
// (src/lib/api-types.ts, `make api-types`). A field renamed or removed in the api fails
// `tsc --noEmit` here, in the build, instead of showing an empty tile on a TV.

import type { components } from "./api-types";

type Schemas = components["schemas"];

export type Num = number | null | undefined;

export type FunnelStage = Schemas["FunnelStage"];
/** A channel's figures; a queue's add its `channel`. */
export type Figures = Schemas["ChannelFigures"] & { channel?: string };
export type QueueFigures = Schemas["QueueFigures"];
/** A figure's name: tables of columns name them, so a figure the api drops fails the build. */
export type FigureName = keyof Schemas["ChannelFigures"];
export type Agent = Schemas["AgentFigures"];
export type LiveDoc = Schemas["LiveDocument"];
export type Alert = Schemas["AlertView"];
export type Config = Schemas["ConfigDocument"];
export type WallboardMessage = Schemas["WallboardMessage"];
export type TodayTotals = Schemas["TodayTotals"];
export type Worklist = Schemas["WorklistDocument"];
export type WorklistContact = Schemas["AbandonedContact"];

export interface ThresholdPair {
  warning: number;
  critical: number;
}

export type Thresholds = Record<string, ThresholdPair>;
