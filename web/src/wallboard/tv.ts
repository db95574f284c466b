// TV mode (/?tv=1): no scrolling and no interaction. When everything fits it all stays on one
// screen; otherwise views are grouped into screens that fit, and long tables are split into
// pages, and the screens rotate every `?rotate=` seconds (default 15).

import { h } from "../lib/dom";

interface Step {
  views: HTMLElement[];
  table?: { body: HTMLElement; from: number; to: number };
  label: string;
}

export class Rotator {
  private steps: Step[] = [];
  private index = 0;
  private signature = "";

  constructor(private readonly main: HTMLElement, private readonly dots: HTMLElement, private readonly seconds: number) {}

  start(): void {
    window.setInterval(() => this.advance(), this.seconds * 1000);
    window.addEventListener("resize", () => this.plan());
    this.plan();
  }

  /** After each data update: re-plan when the amount of content changed, else re-apply paging. */
  refresh(): void {
    const signature = this.views().map((v) => `${v.dataset.view}:${v.querySelectorAll("tr, .tile, .chart, .stage").length}`).join("|");
    if (signature !== this.signature) {
      this.signature = signature;
      this.plan();
    } else this.apply();
  }

  private views(): HTMLElement[] {
    return Array.from(this.main.querySelectorAll<HTMLElement>(":scope > [data-view]"));
  }

  private advance(): void {
    if (this.steps.length < 2) {
      this.plan(); // one screen: still re-fit now and then, figures change width
      return;
    }
    this.index = (this.index + 1) % this.steps.length;
    if (this.index === 0) this.plan(); // re-measure once a cycle: content grows and shrinks
    else {
      this.apply();
      this.fitScale();
    }
  }

  private fits(): boolean {
    if (this.main.scrollHeight > this.main.clientHeight + 1) return false;
    // Figures never wrap: a tile figure wider than its box does not fit either.
    const cells = this.main.querySelectorAll<HTMLElement>(".tile .metric, .tile .extras");
    return Array.from(cells).every((el) => el.scrollWidth <= el.clientWidth + 1);
  }

  private show(views: HTMLElement[]): void {
    for (const v of this.views()) v.hidden = !views.includes(v);
  }

  plan(): void {
    const current = this.steps[this.index]?.label;
    for (const tr of Array.from(this.main.querySelectorAll<HTMLElement>("tr[data-page-hidden]"))) {
      tr.hidden = false;
      delete tr.dataset.pageHidden;
    }
    const all = this.views().filter((v) => !v.dataset.empty);
    this.scale(1);
    this.show(all);
    this.steps = this.fits() ? [] : this.group(all);
    const again = this.steps.findIndex((s) => s.label === current);
    this.index = again >= 0 ? again : 0;
    this.apply();
    this.fitScale();
  }

  /** Greedy: add views to a screen while they fit; a table too long alone is paged. */
  private group(all: HTMLElement[]): Step[] {
    const steps: Step[] = [];
    let screen: HTMLElement[] = [];
    for (const view of all) {
      this.show([...screen, view]);
      if (this.fits()) {
        screen.push(view);
        continue;
      }
      if (screen.length) steps.push(this.step(screen));
      this.show([view]);
      if (this.fits()) screen = [view];
      else {
        steps.push(...this.pages(view));
        screen = [];
      }
    }
    if (screen.length) steps.push(this.step(screen));
    return steps;
  }

  private step(views: HTMLElement[]): Step {
    return { views, label: views.map((v) => v.dataset.view).join("+") };
  }

  private pages(view: HTMLElement): Step[] {
    const body = view.querySelector<HTMLElement>("tbody");
    const rows = body ? Array.from(body.children) as HTMLElement[] : [];
    if (!body || rows.length < 2) return [this.step([view])];
    const rowHeight = Math.max(1, rows[0]!.getBoundingClientRect().height);
    const chrome = this.main.scrollHeight - body.getBoundingClientRect().height; // all but the rows
    const perPage = Math.max(1, Math.floor((this.main.clientHeight - chrome - 2) / rowHeight));
    const out: Step[] = [];
    for (let from = 0; from < rows.length; from += perPage) {
      const to = Math.min(rows.length, from + perPage);
      out.push({ views: [view], table: { body, from, to }, label: `${view.dataset.view}#${from}` });
    }
    return out;
  }

  private apply(): void {
    const step = this.steps[this.index];
    if (!step) {
      this.show(this.views().filter((v) => !v.dataset.empty));
      this.main.dataset.rotating = "false";
      this.dots.replaceChildren();
      return;
    }
    this.main.dataset.rotating = "true";
    this.main.dataset.step = step.label;
    this.show(step.views);
    for (const note of Array.from(this.main.querySelectorAll<HTMLElement>(".page-note"))) note.textContent = "";
    if (step.table) {
      const rows = Array.from(step.table.body.children) as HTMLElement[];
      rows.forEach((tr, i) => {
        const off = i < step.table!.from || i >= step.table!.to;
        tr.hidden = off;
        if (off) tr.dataset.pageHidden = "1";
        else delete tr.dataset.pageHidden;
      });
      const note = step.views[0]!.querySelector<HTMLElement>(".page-note");
      if (note) note.textContent = `${step.table.from + 1}–${step.table.to} of ${rows.length}`;
    }
    this.dots.replaceChildren(...this.steps.map((s, i) =>
      h("span", { class: i === this.index ? "dot on" : "dot", title: s.label })));
  }

  private scale(k: number): void {
    this.main.style.setProperty("--tv-scale", k.toFixed(3));
  }

  /** The largest type (up to 2.2×) with which the screen still fits: a few layout passes. */
  private fitScale(): void {
    this.scale(1);
    const channels = this.main.querySelector<HTMLElement>('[data-view="channels"]');
    if (!channels || channels.hidden || !this.fits()) return;
    let [lo, hi] = [1, 2.2];
    for (let i = 0; i < 7; i++) {
      const mid = (lo + hi) / 2;
      this.scale(mid);
      if (this.fits()) lo = mid;
      else hi = mid;
    }
    this.scale(lo);
  }
}
