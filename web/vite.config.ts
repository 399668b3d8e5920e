// Build settings for the tracemap web UI. The Rust build embeds whatever lands
// in TRACEMAP_WEB_OUT (default `dist`); `npm run dev` proxies the APIs to a
// local server (TRACEMAP_API, default http://127.0.0.1:16686).
import { defineConfig } from 'vite';

const api = process.env.TRACEMAP_API ?? 'http://127.0.0.1:16686';

export default defineConfig({
  base: '/',
  build: {
    outDir: process.env.TRACEMAP_WEB_OUT ?? 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: {
      '/api': { target: api, changeOrigin: false },
    },
  },
});
