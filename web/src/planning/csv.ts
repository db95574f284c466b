// CSV: from the api when it speaks it (Accept: text/csv), else built here from the JSON rows.

export function toCsv(rows: Record<string, unknown>[], columns?: string[]): string {
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) => {
    if (v === null || v === undefined) return "";
    const s = typeof v === "object" ? JSON.stringify(v) : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [cols.join(","), ...rows.map((r) => cols.map((c) => cell(r[c])).join(","))].join("\r\n") + "\r\n";
}

export function download(name: string, body: Blob): void {
  const url = URL.createObjectURL(body);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Ask the api for CSV; answers "json" when it sent JSON instead, or the HTTP status on failure. */
export async function fetchCsv(path: string): Promise<Blob | "json" | number> {
  try {
    const res = await fetch(path, { headers: { Accept: "text/csv" }, credentials: "same-origin" });
    if (!res.ok) return res.status;
    if (!(res.headers.get("content-type") ?? "").includes("csv")) return "json";
    return new Blob([await res.text()], { type: "text/csv;charset=utf-8" });
  } catch {
    return 0;
  }
}
