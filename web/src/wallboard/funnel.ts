// The IVR abandonment funnel: per stage, how many entered, how many hung up there, how many went
// on. Plain HTML bars: crisp at any size and readable by tests.

import { h } from "../lib/dom";
import { count, pct, title } from "../lib/format";
import type { LiveDoc } from "../lib/types";
import { channelOrder } from "./tiles";

export function renderFunnels(container: HTMLElement, doc: LiveDoc): void {
  // A funnel whose only stage is the queue says nothing about an IVR: leave those channels out.
  const channels = Object.keys(doc.channels).sort(channelOrder)
    .filter((c) => (doc.channels[c]?.ivr_funnel ?? []).some((s) => s.stage !== "queue"));
  const key = JSON.stringify(channels.map((c) => [c, doc.channels[c]!.ivr_funnel]));
  if (container.dataset.key === key) return;
  container.dataset.key = key;
  if (!channels.length) {
    container.replaceChildren(h("p", { class: "empty" }, "No IVR traffic in this window."));
    return;
  }
  container.replaceChildren(...channels.map((channel) => funnel(channel, doc)));
}

function funnel(channel: string, doc: LiveDoc) {
  const stages = doc.channels[channel]!.ivr_funnel ?? [];
  const top = Math.max(1, ...stages.map((s) => s.entered));
  const ivrAbandoned = doc.channels[channel]!.abandoned_ivr ?? 0;
  return h("div", { class: "funnel", "data-channel": channel },
    h("h4", {}, `${title(channel)} `, h("span", { class: "muted" }, `${count(ivrAbandoned)} hung up in the IVR`)),
    ...stages.map((s) => {
      const share = s.entered ? s.abandoned / s.entered : null;
      return h("div", { class: "stage", "data-stage": s.stage, "data-entered": s.entered, "data-abandoned": s.abandoned, "data-went-on": s.went_on },
        h("span", { class: "stage-name" }, title(s.stage)),
        h("span", { class: "bar" },
          h("span", { class: "went-on", style: `width:${(100 * s.went_on) / top}%` }),
          h("span", { class: "lost", style: `width:${(100 * s.abandoned) / top}%` })),
        h("span", { class: "stage-figs num" }, h("b", {}, count(s.entered)),
          h("span", { class: "lost-text" }, ` −${count(s.abandoned)} (${pct(share, 1)})`)));
    }));
}
