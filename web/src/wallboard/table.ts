// Keyed table rows updated in place: a row keeps its element (and TV paging) across updates.

import { h, setStatus, setText, setValue } from "../lib/dom";

export interface Cell {
  field: string;
  value: unknown;
  text: string;
  status?: string | null;
  cls?: string;
  title?: string;
}

export interface Row {
  key: string;
  attrs: Record<string, string>;
  cells: Cell[];
}

export function renderRows(tbody: HTMLElement, rows: Row[]): void {
  const existing = new Map<string, HTMLTableRowElement>();
  for (const tr of Array.from(tbody.children) as HTMLTableRowElement[]) existing.set(tr.dataset.key ?? "", tr);
  rows.forEach((row, i) => {
    let tr = existing.get(row.key);
    existing.delete(row.key);
    if (!tr || tr.cells.length !== row.cells.length) {
      tr?.remove();
      tr = h("tr", { "data-key": row.key, ...row.attrs }, ...row.cells.map(() => h("td")));
    }
    row.cells.forEach((cell, j) => fill(tr!.cells[j]!, cell, row.attrs));
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] ?? null);
  });
  for (const tr of existing.values()) tr.remove();
}

function fill(td: HTMLTableCellElement, cell: Cell, rowAttrs: Record<string, string>): void {
  for (const [k, v] of Object.entries(rowAttrs)) if (td.getAttribute(k) !== v) td.setAttribute(k, v);
  td.dataset.field = cell.field;
  setValue(td, cell.value);
  setText(td, cell.text);
  setStatus(td, cell.status ?? null);
  td.className = cell.cls ?? "";
  if (cell.title !== undefined) td.title = cell.title;
}
