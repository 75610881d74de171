/**
 * The error type lives in src/shared/errors.ts, a leaf module every layer may import (backends and
 * system included); core keeps importing it from here.
 */
export * from '../shared/errors.js';
