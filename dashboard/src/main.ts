// The operator dashboard: a hash router over four screens, and the alarm feed every screen shares
// (the header's alarm count, the overview's worst alarms, the alarm console).
import "uplot/dist/uPlot.min.css";
import "./style.css";
import type { AlarmDocument } from "../../src/shared/types.ts";
import { api } from "./api.ts";
import { setText, time } from "./dom.ts";
import { coalesce, subscribe } from "./live.ts";
import { renderAlarms } from "./views/alarms.ts";
import { renderDevice } from "./views/device.ts";
import { renderHealth } from "./views/health.ts";
import { renderOverview } from "./views/overview.ts";
import { showUser, signIn } from "./session.ts";

/** Alarms shown to operators (active or waiting for an ack), re-read whenever an alarm record arrives. */
export class AlarmFeed {
  alarms: AlarmDocument[] = [];
  readonly #listeners = new Set<() => void>();

  constructor() {
    const refresh = coalesce(() => void this.reload(), 150);
    subscribe(["+/+/+/+/alarms"], ["alarms"], { alarm: refresh, ready: refresh });
  }

  async reload(): Promise<void> {
    const [active, unacked] = await Promise.all([api.alarms({ state: "active" }), api.alarms({ state: "rtn-unack" })]);
    this.alarms = [...active.alarms, ...unacked.alarms];
    const count = document.getElementById("alarm-count");
    if (count) {
      const n = this.alarms.filter((a) => !a.acked).length;
      setText(count, String(n));
      count.hidden = n === 0;
    }
    for (const listener of this.#listeners) listener();
  }

  /** Calls `listener` after every reload; returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

export type Screen = (root: HTMLElement, feed: AlarmFeed, arg: string | undefined) => () => void;

const SCREENS: Record<string, Screen> = { "": renderOverview, device: renderDevice, alarms: renderAlarms, health: renderHealth };

let feed: AlarmFeed;
let leave: (() => void) | undefined;

function route(): void {
  const [, name = "", arg] = /^#\/([^/]*)\/?(.*)$/.exec(location.hash) ?? [];
  const screen = SCREENS[name] ?? renderOverview;
  leave?.();
  const root = document.getElementById("screen") as HTMLElement;
  root.replaceChildren();
  root.dataset.screen = name || "overview";
  for (const link of document.querySelectorAll<HTMLAnchorElement>("[data-nav]")) link.classList.toggle("current", link.dataset.nav === (name || "overview"));
  leave = screen(root, feed, arg ? decodeURIComponent(arg) : undefined);
}

// Nothing is fetched or streamed before the user signed in.
void signIn(document.getElementById("screen") as HTMLElement).then((user) => {
  showUser(user);
  feed = new AlarmFeed();
  window.addEventListener("hashchange", route);
  route();
});
const clock = document.getElementById("clock");
if (clock) setInterval(() => setText(clock, time(Date.now())), 1_000);
