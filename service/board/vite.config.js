import { defineConfig } from 'vite';

// JSX through esbuild's automatic runtime with Preact: no Babel, no framework plugin.
export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    assetsDir: 'assets',
    // One small bundle: a module preload polyfill would fetch nothing extra here.
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
    target: 'es2020',
  },
});
