import { readFileSync } from 'node:fs';

export interface MountEntry {
  /** Path inside the filesystem that is mounted here (for btrfs: the subvolume path from the top level). */
  root: string;
  mountPoint: string;
  fsType: string;
  source: string;
  options: string;
}

function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const fields = left.split(' ');
    const [fsType, source, superOptions] = right.split(' ');
    entries.push({
      root: unescapeMountField(fields[3] ?? '/'),
      mountPoint: unescapeMountField(fields[4] ?? '/'),
      fsType: fsType ?? '',
      source: unescapeMountField(source ?? ''),
      options: superOptions ?? '',
    });
  }
  return entries;
}

export function readMounts(): MountEntry[] {
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

/** The mount that holds an absolute real path: the longest mount point that prefixes it (last one wins on overmounts). */
export function mountOf(realPath: string, mounts: MountEntry[] = readMounts()): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const entry of mounts) {
    const mp = entry.mountPoint;
    const inside = mp === '/' || realPath === mp || realPath.startsWith(`${mp}/`);
    if (inside && (!best || mp.length >= best.mountPoint.length)) best = entry;
  }
  return best;
}

export function isMountPoint(realPath: string, mounts: MountEntry[] = readMounts()): boolean {
  return mounts.some((entry) => entry.mountPoint === realPath);
}

/** Mount points strictly below an absolute real path (other filesystems mounted inside it), sorted. */
export function mountsBelow(realPath: string, mounts: MountEntry[] = readMounts()): string[] {
  const prefix = realPath === '/' ? '/' : `${realPath}/`;
  return [...new Set(mounts.map((entry) => entry.mountPoint).filter((mp) => mp.startsWith(prefix)))].sort();
}
