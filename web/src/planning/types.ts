// The planners' documents, generated from the api's OpenAPI description (src/lib/api-types.ts).

import type { components } from "../lib/api-types";

type Schemas = components["schemas"];

export type VolumeRow = Schemas["VolumeRow"];
export type Volume = Schemas["VolumeDocument"];
export type HeatCell = Schemas["HeatCell"];
export type Heatmap = Schemas["HeatmapDocument"];
export type StaffRow = Schemas["StaffRow"];
export type Staffing = Schemas["StaffingDocument"];
export type ProductivityRow = Schemas["ProductivityRow"];
export type Productivity = Schemas["ProductivityDocument"];

export interface Filters {
  channel: string;
  queue: string;
  timeZone: string | undefined;
}
