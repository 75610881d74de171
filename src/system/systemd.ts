// The systemd driver lives in system/systemd/ (a folder of small modules); this path keeps its imports.
export * from './systemd/index.js';
