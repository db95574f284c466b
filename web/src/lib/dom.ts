// A tiny element builder: enough to avoid a framework for two pages.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.replace(/^on/, ""), value);
    else if (name === "class") el.className = String(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from the page`);
  return el as T;
}

/** Set text only when it changed: avoids needless layout on every update. */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** The raw value a test can compare with the api: JSON of the figure ("null" when absent). */
export function setValue(el: HTMLElement, value: unknown): void {
  const raw = JSON.stringify(value ?? null);
  if (el.dataset.value !== raw) el.dataset.value = raw;
}

export function setStatus(el: HTMLElement, status: string | null): void {
  const next = status ?? "none";
  if (el.dataset.status !== next) el.dataset.status = next;
}

export function params(): URLSearchParams {
  return new URLSearchParams(location.search);
}
