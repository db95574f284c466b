// A panel's states: loading, not available yet (404), a problem, or its content.

import { explain } from "../lib/api";
import { h } from "../lib/dom";

export function setState(panel: HTMLElement, state: "loading" | "ready" | "unavailable" | "error" | "empty"): void {
  panel.dataset.state = state;
}

export function unavailable(panel: HTMLElement, body: HTMLElement, what: string, endpoint: string, status: number, message: string): void {
  const missing = status === 404;
  setState(panel, missing ? "unavailable" : "error");
  body.replaceChildren(h("div", { class: missing ? "placeholder" : "placeholder problem", "data-status": String(status) },
    h("strong", {}, missing ? `${what} is not available yet` : `${what} could not be loaded`),
    h("span", {}, missing
      ? `This server does not offer ${endpoint} yet; it comes with the interval history. Nothing is wrong with your data.`
      : explain({ status, message }))));
}

export function empty(panel: HTMLElement, body: HTMLElement, text: string): void {
  setState(panel, "empty");
  body.replaceChildren(h("div", { class: "placeholder" }, h("strong", {}, "No data"), h("span", {}, text)));
}

export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  return q.toString();
}

const demoSources = new Set<string>();

/** The demo-history note shows while any panel's answer says it holds demo rows. */
export function noteDemo(source: string, demo: boolean | undefined): void {
  if (demo) demoSources.add(source);
  else demoSources.delete(source);
  const note = document.getElementById("demo-note");
  if (note) note.hidden = demoSources.size === 0;
}
