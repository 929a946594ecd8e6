// A few DOM helpers; no framework.

type Child = Node | string | number | null | undefined | false;

/** Creates an element: `h("td", { class: "num" }, "12.5")`. Attributes starting with "on" are listeners. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | number | boolean | EventListener | undefined> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

/** Sets text only when it changed: unchanged text costs no layout. */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

export function setAttr(el: Element, name: string, value: string): void {
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

export function time(ms: number | null | undefined): string {
  return ms ? new Date(ms).toLocaleTimeString([], { hour12: false }) : "—";
}

export function dateTime(ms: number | null | undefined): string {
  return ms ? new Date(ms).toLocaleString([], { hour12: false }) : "—";
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/**
 * A modal asking for confirmation, optionally with inputs; resolves with the form's values or
 * null when cancelled. Commands and alarm actions go through it.
 */
export function confirmDialog(title: string, body: string, fields: { name: string; label: string; type?: string; value?: string; required?: boolean; options?: [string, string][] }[] = [], confirmLabel = "Confirm"): Promise<Record<string, string> | null> {
  return new Promise((resolve) => {
    const form = h("form", { method: "dialog", class: "dialog-form" });
    append(form, h("h2", {}, title), h("p", {}, body));
    for (const f of fields) {
      const input = f.options
        ? h("select", { name: f.name }, ...f.options.map(([value, label]) => h("option", { value, selected: value === f.value }, label)))
        : h("input", { name: f.name, type: f.type ?? "text", value: f.value, required: f.required, step: f.type === "number" ? "any" : undefined });
      append(form, h("label", {}, h("span", {}, f.label), input));
    }
    const cancel = h("button", { type: "button", class: "secondary", "data-action": "cancel" }, "Cancel");
    append(form, h("div", { class: "dialog-buttons" }, cancel, h("button", { type: "submit", "data-action": "confirm" }, confirmLabel)));
    const dialog = h("dialog", { class: "confirm" }, form);
    document.body.appendChild(dialog);
    const done = (values: Record<string, string> | null) => {
      dialog.close();
      dialog.remove();
      resolve(values);
    };
    cancel.addEventListener("click", () => done(null));
    dialog.addEventListener("cancel", () => done(null));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      done(Object.fromEntries([...new FormData(form).entries()].map(([k, v]) => [k, String(v)])));
    });
    dialog.showModal();
  });
}
