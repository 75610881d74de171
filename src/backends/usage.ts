import { statfs } from 'node:fs/promises';
import type { PoolUsage } from './types.js';

/** Pool usage from statfs(2): the same numbers df shows, no process needed. */
export async function statfsUsage(path: string): Promise<PoolUsage> {
  const stats = await statfs(path);
  const totalBytes = stats.blocks * stats.bsize;
  const availableBytes = stats.bavail * stats.bsize;
  const usedBytes = totalBytes - availableBytes;
  return { totalBytes, usedBytes, availableBytes, ratio: totalBytes > 0 ? usedBytes / totalBytes : 0 };
}
