// Production build of the operator dashboard (scripts/build-dashboard.sh runs it): the gateway
// serves dashboard/dist at "/" (services/api.service.ts).
import { defineConfig } from "vite";

export default defineConfig({
  root: import.meta.dirname,
  base: "/",
  logLevel: "warn",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // uPlot and the app are small; one chunk is simplest to cache and serve.
    chunkSizeWarningLimit: 300,
  },
});
