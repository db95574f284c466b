// TV mode (/?tv=1): one screen, no scrolling, no interaction. The channel tiles and the queues
// are always on it; beside the queues, when they leave room for it, one secondary panel (IVR,
// answer times, first response) shows at a time and they rotate every `?rotate=` seconds
// (default 15). The queues are paged only when even the smallest type cannot hold them all.
// Type is as large as still fits.

import { h } from "../lib/dom";

const PRIMARY = ["channels", "queues"];
const DESK_ONLY = ["agents"]; // a wide table of people: the top bar's state chips stand for it on a TV
const SCALE_MIN = 0.8; // below this, text would be too small across a room: page the queues
const SCALE_MAX = 1.3;

export class TvScreen {
  private index = 0; // the secondary panel shown
  private page = 0; // the page of its table
  private queuePage = 0;
  private pages = { secondary: 1, queues: 1 };

  constructor(private readonly main: HTMLElement, private readonly dots: HTMLElement, private readonly seconds: number) {}

  start(): void {
    window.setInterval(() => this.advance(), this.seconds * 1000);
    window.addEventListener("resize", () => this.refresh());
    this.refresh();
  }

  /** After each data update (and on resize): lay the screen out again. */
  refresh(): void {
    this.showSecondary();
    for (const tr of Array.from(this.main.querySelectorAll<HTMLElement>("tbody > tr"))) tr.hidden = false;
    this.fitScale();
    const queues = this.view("queues");
    this.pages.queues = this.fits() ? 1 : this.pageTable(queues, this.queuePage);
    this.pages.secondary = this.pageTable(this.view(this.main.dataset.secondary ?? ""), this.page);
  }

  private view(name: string): HTMLElement | undefined {
    return this.views().find((v) => v.dataset.view === name);
  }

  private views(): HTMLElement[] {
    return Array.from(this.main.querySelectorAll<HTMLElement>(":scope > [data-view]"));
  }

  private secondaries(): HTMLElement[] {
    const side = (v: HTMLElement) => !PRIMARY.includes(v.dataset.view ?? "") && !DESK_ONLY.includes(v.dataset.view ?? "");
    return this.views().filter((v) => side(v) && !v.dataset.empty);
  }

  private advance(): void {
    this.queuePage = (this.queuePage + 1) % this.pages.queues;
    if (this.page + 1 < this.pages.secondary) this.page += 1;
    else {
      this.page = 0;
      this.index += 1;
    }
    this.refresh();
  }

  private showSecondary(): void {
    const panels = this.secondaries();
    if (panels.length) this.index %= panels.length;
    const current = panels[this.index];
    for (const v of this.views()) v.hidden = !PRIMARY.includes(v.dataset.view ?? "") && v !== current;
    this.main.dataset.secondary = current?.dataset.view ?? "none";
    this.dots.replaceChildren(...panels.map((p, i) =>
      h("span", { class: i === this.index ? "dot on" : "dot", title: p.dataset.view ?? "" })));
  }

  /** The channels and the queues fit: nothing overflows the screen, no figure overflows its box. */
  private fits(): boolean {
    if (this.main.scrollHeight > this.main.clientHeight + 1) return false;
    const queues = this.main.querySelector<HTMLElement>('[data-view="queues"]');
    if (queues && queues.scrollHeight > queues.clientHeight + 1) return false;
    const wrap = queues?.querySelector<HTMLElement>(".table-wrap");
    if (wrap && (wrap.scrollWidth > wrap.clientWidth + 1 || wrap.scrollHeight > wrap.clientHeight + 1)) return false;
    const cells = this.main.querySelectorAll<HTMLElement>(".tile .metric, .tile .metric .value, .tile .metric .label, .tile .extras, .tile .agents");
    return Array.from(cells).every((el) => el.scrollWidth <= el.clientWidth + 1);
  }

  private scale(k: number): void {
    document.documentElement.style.setProperty("--tv-scale", k.toFixed(3));
  }

  /** The largest type (within SCALE_MIN..SCALE_MAX) with which the screen fits: a few layout
   * passes. A secondary panel that leaves the queues too narrow steps aside first. */
  private fitScale(): void {
    this.scale(1);
    if (!this.fits() && this.main.dataset.secondary !== "none") {
      for (const v of this.secondaries()) v.hidden = true;
      this.main.dataset.secondary = "none";
      this.dots.replaceChildren();
    }
    let [lo, hi] = [SCALE_MIN, SCALE_MAX];
    for (let i = 0; i < 7; i++) {
      const mid = (lo + hi) / 2;
      this.scale(mid);
      if (this.fits()) lo = mid;
      else hi = mid;
    }
    this.scale(lo);
    this.main.dataset.fits = String(this.fits());
  }

  /** A table longer than its panel: the rows of page `page` only (all rows for a short one).
   * Returns the number of pages. */
  private pageTable(view: HTMLElement | undefined, page: number): number {
    const body = view?.querySelector<HTMLElement>("tbody");
    const note = view?.querySelector<HTMLElement>(".page-note");
    const rows = body ? (Array.from(body.children) as HTMLElement[]) : [];
    for (const tr of rows) tr.hidden = false;
    if (note) note.textContent = "";
    if (!view || !body || rows.length < 2 || view.scrollHeight <= view.clientHeight + 1) return 1;
    const rowHeight = Math.max(1, rows[0]!.getBoundingClientRect().height);
    const chrome = view.scrollHeight - body.getBoundingClientRect().height;
    const perPage = Math.max(1, Math.floor((view.clientHeight - chrome - 2) / rowHeight));
    const pages = Math.ceil(rows.length / perPage);
    const [from, to] = [(page % pages) * perPage, Math.min(rows.length, ((page % pages) + 1) * perPage)];
    rows.forEach((tr, i) => (tr.hidden = i < from || i >= to));
    if (note) note.textContent = `${from + 1}–${to} of ${rows.length}`;
    return pages;
  }
}
