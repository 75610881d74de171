// Bundles the CLI (from its sources, after tsc) into dist/cli/index.js with one chunk per lazily loaded verb:
// Node then reads a handful of files at start-up instead of several hundred modules.
// tsc's per-module output stays in dist/ for the library entry points and the tests.
import { rm } from 'node:fs/promises';
import { rolldown } from 'rolldown';

const root = new URL('..', import.meta.url);
const chunks = new URL('dist/cli/chunks/', root);
await rm(chunks, { recursive: true, force: true });

const bundle = await rolldown({
  input: new URL('src/cli/index.ts', root).pathname,
  platform: 'node',
  // Node's own modules stay imports; everything else (our code, commander, zod, execa, pino, yaml,
  // the MCP SDK) goes into the bundle. cli-progress too stays an import: it is loaded from
  // node_modules only when a progress bar is drawn, and bundling it (CommonJS) would move rolldown's
  // interop helpers into a chunk of their own that every start-up, --version included, would read.
  external: [/^node:/, /^cli-progress$/],
  logLevel: 'warn',
});
await bundle.write({
  dir: new URL('dist/cli', root).pathname,
  format: 'esm',
  entryFileNames: 'index.js',
  chunkFileNames: 'chunks/[name]-[hash].js',
  // What every start-up reads, --version included, is one chunk: commander and the version. Rolldown
  // keeps its runtime helpers (CommonJS interop) in a chunk of their own as soon as lazily loaded
  // modules share them (the recovery resolver that snapshot create loads only after a crash); that
  // chunk is not offered to groups, so the version joins commander instead and start-up still reads
  // three files: the entry, this chunk and the helpers.
  codeSplitting: {
    groups: [
      {
        name: 'cli-base',
        test: /[\\/]node_modules[\\/]commander[\\/]|[\\/]src[\\/]core[\\/]version\.ts$/,
      },
    ],
  },
  sourcemap: false,
});
await bundle.close();
// tsc's source map described the unbundled entry.
await rm(new URL('dist/cli/index.js.map', root), { force: true });
