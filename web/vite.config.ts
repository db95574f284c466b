// Two pages: the wallboard (/) and the planners' page (/planning/, a directory index so the
// api's StaticFiles serves it at /planning without an extra route).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const page = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const api = process.env.CCPULSE_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2020",
    reportCompressedSize: true,
    rolldownOptions: {
      input: { wallboard: page("./index.html"), planning: page("./planning/index.html") },
    },
  },
  // `npm run dev` against a running api (make run): same-origin for cookies and websockets.
  server: {
    proxy: {
      "/api": api,
      "/login": api,
      "/ws": { target: api.replace(/^http/, "ws"), ws: true },
    },
  },
});
