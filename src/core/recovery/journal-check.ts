import { isAbsolute, posix } from 'node:path';
import type { Config } from '../config.js';
import { parseSnapshotName } from '../naming.js';
import type { Journal } from './journal.js';

const isString = (value: unknown): value is string => typeof value === 'string';

function badPath(value: unknown): boolean {
  if (!isString(value) || value.length === 0 || value.includes('\0') || isAbsolute(value)) return true;
  if (value === '.') return false;
  const trimmed = value.replace(/\/+$/, '');
  const normal = posix.normalize(trimmed);
  return normal !== trimmed || normal === '..' || normal.startsWith('../');
}

/**
 * Why a journal found in stateDir must not be replayed, or [] when it may be: every item must be a
 * configured volume with its configured backend, path and snapshotDir, its target and safety must
 * be names snapguard gives that volume's snapshots, its paths relative and inside the volume, and
 * its units among the volume's configured units. Anything else did not come from a snapguard
 * recovery of this configuration (or the configuration changed since): doctor leaves it alone.
 */
export function journalProblems(config: Config, journal: unknown, file: string): string[] {
  const problems: string[] = [];
  const j = journal as Partial<Journal> | null;
  if (!j || typeof j !== 'object') return ['the journal is not an object'];
  if (
    !isString(j.recoveryId) ||
    !/^rec-[\w-]+$/.test(j.recoveryId) ||
    !file.endsWith(`/${j.recoveryId}.json`)
  )
    problems.push('its recoveryId does not match its file name');
  if (j.mode !== 'rollback' && j.mode !== 'files') problems.push(`mode "${String(j.mode)}" is unknown`);
  if (!Number.isInteger(j.pid)) problems.push('pid is not a number');
  if (!Array.isArray(j.items) || j.items.length === 0) {
    problems.push('it names no volume');
    return problems;
  }
  for (const item of j.items) {
    const id = isString(item?.volume) ? item.volume : '';
    const volume = Object.hasOwn(config.volumes, id) ? config.volumes[id] : undefined;
    if (!volume) {
      problems.push(`volume "${String(item?.volume).slice(0, 80)}" is not configured`);
      continue;
    }
    if (item.backend !== volume.backend)
      problems.push(`${id}: backend "${String(item.backend)}" is not the configured ${volume.backend}`);
    if (item.path !== volume.path)
      problems.push(`${id}: path ${String(item.path)} is not the configured ${volume.path}`);
    if (item.snapshotDir !== volume.snapshotDir)
      problems.push(
        `${id}: snapshotDir ${String(item.snapshotDir)} is not the configured ${volume.snapshotDir}`,
      );
    if (!isString(item.target) || !parseSnapshotName(id, item.target))
      problems.push(`${id}: target "${String(item.target).slice(0, 80)}" is not a snapshot name of ${id}`);
    if (!isString(item.safety) || parseSnapshotName(id, item.safety)?.type !== 'pre-recover')
      problems.push(
        `${id}: safety "${String(item.safety).slice(0, 80)}" is not a pre-recover snapshot name of ${id}`,
      );
    for (const key of ['paths', 'removeOnly'] as const) {
      const list = item[key];
      if (list === undefined && key === 'removeOnly') continue;
      if (!Array.isArray(list) || list.some(badPath))
        problems.push(`${id}: ${key} holds a path that is not relative and inside the volume`);
    }
    const allowed = new Set(volume.services?.units ?? []);
    if (!Array.isArray(item.units) || item.units.some((unit) => !isString(unit) || !allowed.has(unit)))
      problems.push(`${id}: units are not the volume's configured services`);
    if (!Array.isArray(item.done)) problems.push(`${id}: done is not a list of steps`);
  }
  return problems;
}
