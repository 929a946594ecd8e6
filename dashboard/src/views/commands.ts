// The command panel of a device page: start / stop / reset and setpoints, each confirmed first,
// then followed until the PLC answers (GET /api/commands/{id}: acknowledged, rejected, timed_out).
import { isSetpointTag, type CommandRequest, type CommandView } from "../../../src/control/commands.ts";
import type { DeviceDocument } from "../../../src/shared/types.ts";
import { api } from "../api.ts";
import { confirmDialog, h, time } from "../dom.ts";
import { may, needsRole } from "../session.ts";

const POLL_MS = 300;

function describe(command: CommandRequest | CommandView): string {
  return command.action === "setpoint" ? `setpoint ${command.tag} = ${command.value}` : command.action;
}

function statusText(command: CommandView): string {
  return command.reason ? `${command.status}: ${command.reason}` : command.status;
}

export class CommandPanel {
  readonly el: HTMLElement;
  readonly #device: DeviceDocument;
  readonly #outcome = h("p", { class: "outcome", "data-role": "command-outcome", "aria-live": "polite" }, "No command sent from this page.");
  readonly #recent = h("tbody");
  #closed = false;

  constructor(device: DeviceDocument) {
    this.#device = device;
    const setpoints = device.tags.filter(isSetpointTag);
    const tagSelect = h("select", { name: "tag", "aria-label": "setpoint tag" }, ...setpoints.map((t) => h("option", { value: t.name }, `${t.name} (${t.min ?? "…"}..${t.max ?? "…"} ${t.unit})`)));
    const valueInput = h("input", { name: "value", type: "number", step: "any", "aria-label": "setpoint value", required: true });
    // Viewers see the panel but cannot use it (the API would answer 403).
    const allowed = may("operator");
    const title = allowed ? undefined : needsRole("operator");
    const setpointForm = h("form", { class: "setpoint" }, tagSelect, valueInput, h("button", { type: "submit", disabled: !allowed, title }, "Set…"));
    setpointForm.addEventListener("submit", (e) => {
      e.preventDefault();
      void this.#send({ action: "setpoint", tag: tagSelect.value, value: Number(valueInput.value) });
    });
    const button = (action: "start" | "stop" | "reset") => h("button", { type: "button", class: "secondary", "data-command": action, disabled: !allowed, title, onclick: () => void this.#send({ action }) }, `${action[0].toUpperCase()}${action.slice(1)}…`);
    this.el = h(
      "section",
      { class: "panel commands" },
      h("h2", {}, "Commands"),
      h("div", { class: "buttons" }, button("start"), button("stop"), button("reset")),
      setpoints.length > 0 ? setpointForm : h("p", { class: "muted" }, "This device has no setpoints."),
      this.#outcome,
      h("table", { class: "compact" }, h("thead", {}, h("tr", {}, h("th", {}, "sent"), h("th", {}, "command"), h("th", {}, "by"), h("th", {}, "outcome"))), this.#recent),
    );
    void this.#loadRecent();
  }

  destroy(): void {
    this.#closed = true;
  }

  async #send(command: CommandRequest): Promise<void> {
    const confirmed = await confirmDialog(`Send ${describe(command)} to ${this.#device._id}?`, "The PLC acts on it at once. Commands are never retried.", [], "Send");
    if (!confirmed) return;
    this.#show(`${describe(command)}: sending…`, "pending");
    try {
      let current = await api.sendCommand(this.#device._id, command);
      this.#show(`${describe(command)}: ${current.status}`, current.status);
      while (current.status === "pending" && !this.#closed) {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        current = await api.command(current.id);
      }
      this.#show(`${describe(command)}: ${statusText(current)}${current.ackTs ? ` (PLC ack ${time(current.ackTs)})` : ""}`, current.status);
    } catch (err) {
      this.#show(`${describe(command)}: ${(err as Error).message}`, "rejected");
    }
    await this.#loadRecent();
  }

  #show(text: string, status: string): void {
    this.#outcome.textContent = text;
    this.#outcome.dataset.status = status;
  }

  async #loadRecent(): Promise<void> {
    const { commands } = await api.commands(this.#device._id).catch(() => ({ commands: [] as CommandView[] }));
    this.#recent.replaceChildren(...commands.map((c) => h("tr", { "data-status": c.status }, h("td", {}, time(c.requestedAt)), h("td", {}, describe(c)), h("td", {}, c.user), h("td", { class: "status" }, statusText(c)))));
  }
}
