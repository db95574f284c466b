// Behind every number: a count on a channel tile opens, in one click (or Enter), the contacts
// that make it up, from GET /api/v1/contacts for the same window and channel; the list's count
// is the figure's (docs/metrics.md), pages load on demand.

import { getJson } from "../lib/api";
import type { components } from "../lib/api-types";
import { h, setText } from "../lib/dom";
import { clock, count, duration, title, windowLabel } from "../lib/format";

type ContactList = components["schemas"]["ContactList"];
type ContactItem = components["schemas"]["ContactItem"];

/** Tile fields that open a list, and the figure each opens. */
const FIGURE_OF: Record<string, string> = {
  offered: "offered",
  answered: "answered",
  abandon_rate: "abandoned",
  service_level: "sl_missed",
};

const LABELS: Record<string, string> = { sl_missed: "Missed service level" };

let dialog: HTMLDialogElement | null = null;

export function drillable(field: string): boolean {
  return field in FIGURE_OF;
}

/** Makes the tiles' counts open their contacts: one delegated listener, keyboard too. */
export function enableDrillDown(tiles: HTMLElement, timeZone: () => string | undefined): void {
  const open = (target: EventTarget | null) => {
    const el = target instanceof Element ? target.closest<HTMLElement>("[data-drill]") : null;
    if (!el || !el.dataset.channel || !el.dataset.window) return false;
    void show(el.dataset.drill!, el.dataset.channel, el.dataset.window, timeZone());
    return true;
  };
  tiles.addEventListener("click", (e) => {
    if (open(e.target)) e.preventDefault();
  });
  tiles.addEventListener("keydown", (e) => {
    if ((e.key === "Enter" || e.key === " ") && open(e.target)) e.preventDefault();
  });
}

/** Marks a tile element as opening `field`'s contacts (a focusable button for the keyboard). */
export function markDrill(el: HTMLElement, field: string): void {
  const figure = FIGURE_OF[field];
  if (!figure || el.dataset.drill === figure) return;
  el.dataset.drill = figure;
  el.tabIndex = 0;
  el.setAttribute("role", "button");
  el.setAttribute("aria-haspopup", "dialog");
  el.classList.add("drill");
}

function ensureDialog(): HTMLDialogElement {
  if (dialog) return dialog;
  dialog = h("dialog", { id: "drill", class: "drill-dialog", "aria-labelledby": "drill-title" },
    h("header", {}, h("h2", { id: "drill-title" }), h("button", { type: "button", class: "close", "aria-label": "Close" }, "×")),
    h("p", { id: "drill-note", class: "muted" }),
    h("div", { class: "table-wrap" }, h("table", { class: "data", id: "drill-rows" },
      h("thead", {}, h("tr", {}, ...["Time", "Contact", "Path", "Queue", "Agent", "Wait", "Handle", "Outcome"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}))),
    h("button", { type: "button", id: "drill-more", class: "primary", hidden: "" }, "Load more")) as HTMLDialogElement;
  dialog.querySelector(".close")!.addEventListener("click", () => dialog?.close());
  document.body.append(dialog);
  return dialog;
}

async function show(figure: string, channel: string, window: string, timeZone: string | undefined): Promise<void> {
  const d = ensureDialog();
  const body = d.querySelector("tbody")!;
  const more = d.querySelector<HTMLButtonElement>("#drill-more")!;
  body.replaceChildren();
  d.dataset.state = "loading"; // never "ready" with the previous list's count
  delete d.dataset.count;
  d.dataset.figure = figure;
  d.dataset.channel = channel;
  setText(d.querySelector("#drill-title")!, `${LABELS[figure] ?? title(figure)} · ${title(channel)} · ${windowLabel(window)}`);
  setText(d.querySelector("#drill-note")!, "Loading…");
  if (!d.open) d.showModal();
  const base = `/api/v1/contacts?figure=${encodeURIComponent(figure)}&channel=${encodeURIComponent(channel)}&window=${encodeURIComponent(window)}&limit=50`;
  const load = async (cursor: string | null) => {
    const answer = await getJson<ContactList>(cursor ? `${base}&cursor=${encodeURIComponent(cursor)}` : base, 15_000);
    if (!answer.ok) {
      d.dataset.state = "error";
      const why = answer.status === 403
        ? "Your key may not open the contacts behind a figure: a planner or admin key can (CCPULSE_CONTACT_LISTS_ROLE)."
        : `The contacts could not be loaded: ${answer.message}.`;
      setText(d.querySelector("#drill-note")!, why);
      more.hidden = true;
      return;
    }
    const list = answer.data;
    d.dataset.state = "ready";
    d.dataset.count = String(list.count);
    const rolled = list.rolled_until ? ` Contacts changed in the last seconds join the list after ${clock(new Date(list.rolled_until), timeZone)}.` : "";
    setText(d.querySelector("#drill-note")!, `${count(list.count)} ${list.count === 1 ? "contact" : "contacts"}, newest first.${rolled}`);
    body.append(...list.contacts.map((c) => row(c, timeZone)));
    more.hidden = list.next_cursor === null;
    more.onclick = () => void load(list.next_cursor);
  };
  await load(null);
}

function row(c: ContactItem, timeZone: string | undefined): HTMLElement {
  return h("tr", { "data-contact": c.contact },
    h("td", {}, clock(new Date(c.at_ms), timeZone)),
    h("td", { class: "mono", title: "the vendor's id, or its keyed hash" }, c.contact),
    h("td", { "data-field": "path" }, c.timeline.filter((t) => t.event === "stage").map((t) => t.stage).join(" › ") || "—"),
    h("td", {}, c.queue ?? "—"),
    h("td", {}, c.agent ?? "—"),
    h("td", { class: "num" }, duration(c.wait_seconds)),
    h("td", { class: "num" }, duration(c.handle_seconds)),
    h("td", {}, c.abandon_stage ? `${c.outcome} (${c.abandon_stage})` : c.outcome));
}
