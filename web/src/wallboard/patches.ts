// The websocket's `patch` messages (api/deltas.py): `set` is a tree of changes — where the state
// and the patch both hold an object, the changes inside it; anywhere else the new value whole
// (null is a value, not a deletion); `unset` lists the paths no longer in the document.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Applies `set` then `unset` to `target` in place; returns `target`. */
export function applyPatch<T extends object>(target: T, set: Record<string, unknown>, unset: string[][] = []): T {
  merge(target as unknown as JsonObject, set as JsonObject);
  for (const path of unset) remove(target as unknown as JsonObject, path);
  return target;
}

function merge(target: JsonObject, changes: JsonObject): void {
  for (const [key, value] of Object.entries(changes)) {
    const current = target[key];
    if (isObject(value) && isObject(current)) merge(current, value);
    else target[key] = value; // freshly parsed: no one else holds it
  }
}

function remove(target: JsonObject, path: string[]): void {
  let node: Json | undefined = target;
  for (const key of path.slice(0, -1)) node = isObject(node) ? node[key] : undefined;
  if (isObject(node) && path.length) delete node[path[path.length - 1]!];
}
