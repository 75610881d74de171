import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** mulberry32: a small, fast 32-bit PRNG; the same seed gives the same sequence on every machine. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface SampleOptions {
  seed: number;
  /** Keep a reservoir per top-level directory and take from each in turn (covers all areas of the tree). */
  spread?: boolean;
  signal?: AbortSignal | undefined;
}

export interface TreeSample {
  /** Relative paths of the chosen files (regular files and symlinks), in pick order. */
  paths: string[];
  /** Regular files and symlinks seen in the walk: the population the sample is drawn from. */
  population: number;
  directories: number;
  /** Folders that could not be read (EIO and the like), relative path and error code. */
  unreadable: { path: string; code: string }[];
}

/**
 * Reservoir sampling (algorithm R) with optional groups: memory holds `size` items per group,
 * never the population. With one group the pick is uniform over everything offered.
 */
export class ReservoirSampler {
  private readonly random: () => number;
  private readonly groups = new Map<string, { seen: number; items: string[] }>();
  population = 0;

  constructor(
    private readonly size: number,
    seed: number,
  ) {
    this.random = seededRandom(seed);
  }

  offer(item: string, group = ''): void {
    this.population++;
    let reservoir = this.groups.get(group);
    if (!reservoir) {
      reservoir = { seen: 0, items: [] };
      this.groups.set(group, reservoir);
    }
    reservoir.seen++;
    if (reservoir.items.length < this.size) {
      reservoir.items.push(item);
      return;
    }
    const slot = Math.floor(this.random() * reservoir.seen);
    if (slot < this.size) reservoir.items[slot] = item;
  }

  /** The sample: one group as is; several groups shuffled and taken from in turn (name order). */
  result(): string[] {
    const keys = [...this.groups.keys()].sort();
    if (keys.length <= 1) return keys.length ? (this.groups.get(keys[0] as string)?.items ?? []) : [];
    const groups = keys.map((key) => shuffle([...(this.groups.get(key)?.items ?? [])], this.random));
    const picked: string[] = [];
    for (let round = 0; picked.length < this.size; round++) {
      let took = false;
      for (const group of groups) {
        const item = group[round];
        if (item !== undefined && picked.length < this.size) {
          picked.push(item);
          took = true;
        }
      }
      if (!took) break;
    }
    return picked;
  }
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/** The group of a relative path when spreading: its top-level folder ('' for files at the root). */
export function topLevelGroup(rel: string): string {
  const slash = rel.indexOf('/');
  return slash < 0 ? '' : rel.slice(0, slash);
}

/**
 * Picks `size` files uniformly at random in one streaming pass over the tree (reservoir
 * sampling, algorithm R). Memory holds the sample and the folders still to visit, never the
 * whole tree. Names are sorted per folder so a seed picks the same files on every run.
 * With `spread`, each top-level folder (and the root's own files) keeps its own reservoir and the
 * sample takes from them in turn, so memory is bounded by size x top-level folders.
 */
export async function sampleTree(root: string, size: number, options: SampleOptions): Promise<TreeSample> {
  const sampler = new ReservoirSampler(size, options.seed);
  const pending: string[] = [''];
  let directories = 0;
  const unreadable: TreeSample['unreadable'] = [];
  while (pending.length > 0) {
    options.signal?.throwIfAborted();
    const rel = pending.pop() as string;
    let entries;
    try {
      entries = await readdir(rel ? join(root, rel) : root, { withFileTypes: true });
    } catch (error) {
      unreadable.push({ path: rel || '.', code: (error as NodeJS.ErrnoException).code ?? 'EIO' });
      continue;
    }
    directories++;
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const subdirs: string[] = [];
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) subdirs.push(child);
      else if (entry.isFile() || entry.isSymbolicLink())
        sampler.offer(child, options.spread ? topLevelGroup(child) : '');
    }
    // Reverse so the stack visits folders in name order (determinism only; any fixed order would do).
    for (let i = subdirs.length - 1; i >= 0; i--) pending.push(subdirs[i] as string);
  }
  return { paths: sampler.result(), population: sampler.population, directories, unreadable };
}

/** Walks a tree and counts what a full restore must reproduce. */
export interface TreeCensus {
  files: number;
  symlinks: number;
  directories: number;
  bytes: number;
  unreadable: { path: string; code: string }[];
}

export async function censusTree(
  root: string,
  options: { signal?: AbortSignal | undefined; sizeOf: (path: string) => Promise<number> },
): Promise<TreeCensus> {
  const census: TreeCensus = { files: 0, symlinks: 0, directories: 0, bytes: 0, unreadable: [] };
  const pending: string[] = [''];
  while (pending.length > 0) {
    options.signal?.throwIfAborted();
    const rel = pending.pop() as string;
    let entries;
    try {
      entries = await readdir(rel ? join(root, rel) : root, { withFileTypes: true });
    } catch (error) {
      census.unreadable.push({ path: rel || '.', code: (error as NodeJS.ErrnoException).code ?? 'EIO' });
      continue;
    }
    census.directories++;
    const sizes: Promise<number>[] = [];
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) pending.push(child);
      else if (entry.isSymbolicLink()) census.symlinks++;
      else if (entry.isFile()) {
        census.files++;
        sizes.push(options.sizeOf(join(root, child)));
      }
    }
    for (const size of await Promise.all(sizes)) census.bytes += size;
  }
  return census;
}
