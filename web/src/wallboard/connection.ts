// The websocket to /ws/wallboard: reconnects with capped, jittered backoff forever (a TV must
// never need a reload) and says when data is stale (no message for STALE_MS). After the snapshot
// the api sends patches (what changed since the numbered state this page holds); a patch for
// another state than ours means we missed one: dial again at once for a new snapshot.

import type { Alert, LiveDoc, TodayTotals, WallboardMessage } from "../lib/types";
import { applyPatch } from "./patches";

/** The state the api's messages build: the 15-minute document and today's totals. */
export interface Frame {
  data: LiveDoc;
  today: TodayTotals;
}

export const STALE_MS = 10_000;
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 15_000;

export type Link = "connecting" | "live" | "reconnecting" | "unavailable";

export interface Handlers {
  onDoc(doc: LiveDoc, kind: "snapshot" | "update", today?: TodayTotals): void;
  onAlerts(alerts: Alert[]): void;
  onLink(link: Link, retryInMs?: number): void;
  onNeverOpened(): void;
}

export class Connection {
  lastMessageAt = 0;
  private socket: WebSocket | null = null;
  private delay = FIRST_DELAY_MS;
  private retryTimer: number | undefined;
  private opened = false;
  private openedAt = 0;
  private dialedAt = 0;
  private frame: Frame | null = null; // our copy: the handlers get clones they may keep
  seq: number | null = null;
  private resyncedAt = 0;

  constructor(private readonly handlers: Handlers, private readonly path = "/ws/wallboard") {}

  start(): void {
    this.connect();
    // A socket can sit open and silent (hung api, Redis down): count that as a dead link too.
    window.setInterval(() => this.watchdog(), 1000);
  }

  isStale(now = Date.now()): boolean {
    return now - this.lastMessageAt > STALE_MS;
  }

  private connect(): void {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + this.path);
    this.socket = socket;
    this.opened = false;
    this.dialedAt = Date.now();
    this.handlers.onLink(this.lastMessageAt ? "reconnecting" : "connecting");
    socket.onopen = () => {
      this.opened = true;
      this.openedAt = Date.now();
    };
    socket.onmessage = (event) => this.receive(String(event.data));
    socket.onclose = () => this.closed(socket);
  }

  private receive(text: string): void {
    let msg: WallboardMessage;
    try {
      msg = JSON.parse(text) as WallboardMessage; // the api's WallboardMessage (api/documents.py)
    } catch {
      return;
    }
    if (msg.type === "snapshot" || msg.type === "update" || msg.type === "patch") {
      if (msg.type === "patch") {
        if (!this.frame || msg.base !== this.seq) return this.resync();
        applyPatch(this.frame, msg.set, msg.unset);
      } else this.frame = { data: msg.data, today: msg.today };
      this.seq = msg.seq;
      this.lastMessageAt = Date.now();
      this.delay = FIRST_DELAY_MS;
      this.handlers.onLink("live");
      const copy = structuredClone(this.frame);
      this.handlers.onDoc(copy.data, msg.type === "snapshot" ? "snapshot" : "update", copy.today);
    } else if (msg.type === "alerts" && Array.isArray(msg.data)) {
      this.handlers.onAlerts(msg.data);
    } else if (msg.type === "unavailable") {
      this.handlers.onLink("unavailable");
    }
  }

  /** The state we hold as text, for tests that compare it with a full document. */
  state(): string {
    return JSON.stringify({ seq: this.seq, frame: this.frame });
  }

  private resync(): void {
    const socket = this.socket;
    this.frame = null;
    this.seq = null;
    if (!socket) return;
    socket.onmessage = null;
    socket.onclose = null;
    socket.close();
    // At once (the link is fine, only our copy fell behind), unless it keeps happening.
    if (Date.now() - this.resyncedAt > MAX_DELAY_MS) {
      this.resyncedAt = Date.now();
      this.socket = null;
      this.connect();
    } else this.closed(socket);
  }

  private closed(socket: WebSocket): void {
    if (this.socket !== socket) return;
    this.socket = null;
    if (!this.opened) this.handlers.onNeverOpened();
    const wait = Math.round(this.delay * (0.75 + Math.random() * 0.5));
    this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
    this.handlers.onLink("reconnecting", wait);
    window.clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => this.connect(), wait);
  }

  private watchdog(): void {
    // Open but silent for three stale periods, or never opened after two: drop it and dial
    // again. A hung api never answers the close either, so do not wait for its onclose (the
    // page said "connected but sends nothing" for minutes).
    const socket = this.socket;
    if (!socket) return;
    const quiet = this.opened && Date.now() - Math.max(this.lastMessageAt, this.openedAt) > 3 * STALE_MS;
    const stuck = !this.opened && Date.now() - this.dialedAt > 2 * STALE_MS;
    if (!quiet && !stuck) return;
    socket.onmessage = null;
    socket.onclose = null;
    socket.close();
    this.closed(socket);
  }
}
