// Same-origin requests (the session cookie goes along) with answers a page can show as they are.

export type Answer<T> =
  | { ok: true; status: number; data: T }
  | { ok: false; status: number; message: string };

export async function getJson<T>(path: string, timeoutMs = 10_000): Promise<Answer<T>> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  try {
    const res = await fetch(path, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      signal: ctrl.signal,
    });
    if (res.ok) return { ok: true, status: res.status, data: (await res.json()) as T };
    return { ok: false, status: res.status, message: await detail(res) };
  } catch (err) {
    const aborted = err instanceof DOMException && err.name === "AbortError";
    return { ok: false, status: 0, message: aborted ? "no answer in time" : "api unreachable" };
  } finally {
    clearTimeout(timer);
  }
}

async function detail(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { detail?: unknown };
    if (typeof body.detail === "string") return body.detail;
    if (body.detail !== undefined) return JSON.stringify(body.detail);
  } catch {
    /* not JSON */
  }
  return res.statusText || `HTTP ${res.status}`;
}

/** What to tell a person when an answer is not data. */
export function explain(answer: { status: number; message: string }): string {
  if (answer.status === 401) return "Sign-in needed: open /login on this screen.";
  if (answer.status === 403) return `Not allowed for this key: ${answer.message}`;
  if (answer.status === 404) return "Not available yet on this server.";
  if (answer.status === 0) return `The api cannot be reached (${answer.message}).`;
  return `${answer.status}: ${answer.message}`;
}

/** Not signed in (or the session ended): to the sign-in page, coming back here afterwards. */
export function toSignIn(): void {
  location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
}
