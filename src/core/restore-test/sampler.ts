import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { binaryOf, displayBinary, pathUnder } from '../byte-names.js';

export interface SampleOptions {
  seed: number;
  /** Keep a reservoir per top-level directory and take from each in turn (covers all areas of the tree). */
  spread?: boolean;
  signal?: AbortSignal | undefined;
  /** btrfs: report the empty folders that stand for nested subvolumes instead of counting them. */
  nestedPlaceholders?: boolean;
}

export interface TreeSample {
  /**
   * Relative paths of the chosen files (regular files and symlinks), in pick order, as shown:
   * names in UTF-8 as they are, other bytes as \xNN (see displayName).
   */
  paths: string[];
  /** The same paths as binary strings (one char per byte): the exact names, for fs calls via pathUnder. */
  bytePaths: string[];
  /** Regular files and symlinks seen in the walk: the population the sample is drawn from. */
  population: number;
  directories: number;
  /** Folders that could not be read (EIO and the like), relative path and error code. */
  unreadable: { path: string; code: string }[];
  /** With nestedPlaceholders: where the snapshot holds an empty folder for a nested subvolume. */
  placeholders: string[];
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const FNV_PRIME = 0x01000193;

/** FNV-1a over `text`, continuing from `state`: hashing a folder's path once serves all its files. */
export function fnvContinue(state: number, text: string): number {
  let h = state;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, FNV_PRIME);
  }
  return h >>> 0;
}

/** The hash state every item's hash starts from under `seed`. */
export function seedState(seed: number): number {
  return (0x811c9dc5 ^ seed) >>> 0;
}

/** Turns a finished FNV state into the item's pseudo-random priority (32 bits, well mixed). */
export function finishPriority(state: number): number {
  return fmix32(state);
}

/** The pseudo-random priority of `item` under `seed`: the same pair always gives the same number. */
export function samplePriority(seed: number, item: string): number {
  return finishPriority(fnvContinue(seedState(seed), item));
}

interface Group {
  items: { item: string; priority: number }[];
  /** Index of the largest priority in items (the one a better item replaces). */
  worst: number;
}

/**
 * Uniform sampling in one pass with memory bounded by the sample (bottom-k sampling, a form of
 * reservoir sampling): every item gets a seeded pseudo-random priority and the `size` smallest
 * are kept. Unlike algorithm R the result does not depend on the order items arrive in, so the
 * tree can be walked concurrently and a seed picks the same files on every run; files added
 * elsewhere in the tree do not change which of the old ones are picked unless they outrank them.
 * Groups (top-level folders with spread) each keep their own `size` best.
 */
export class ReservoirSampler {
  private readonly groups = new Map<string, Group>();
  population = 0;

  constructor(
    private readonly size: number,
    private readonly seed: number,
  ) {}

  offer(item: string, group = ''): void {
    this.offerWithPriority(item, samplePriority(this.seed, item), group);
  }

  /** Like offer with a precomputed priority (= samplePriority(seed, item)); `item` may be built lazily. */
  offerWithPriority(item: string | (() => string), priority: number, group = ''): void {
    this.population++;
    let bucket = this.groups.get(group);
    if (!bucket) {
      bucket = { items: [], worst: 0 };
      this.groups.set(group, bucket);
    }
    if (bucket.items.length < this.size) {
      bucket.items.push({ item: typeof item === 'string' ? item : item(), priority });
      if (priority > (bucket.items[bucket.worst]?.priority ?? -1)) bucket.worst = bucket.items.length - 1;
      return;
    }
    const worst = bucket.items[bucket.worst] as { item: string; priority: number };
    if (priority > worst.priority) return;
    const name = typeof item === 'string' ? item : item();
    if (priority === worst.priority && name >= worst.item) return;
    bucket.items[bucket.worst] = { item: name, priority };
    let index = 0;
    for (let i = 1; i < bucket.items.length; i++)
      if ((bucket.items[i]?.priority ?? 0) > (bucket.items[index]?.priority ?? 0)) index = i;
    bucket.worst = index;
  }

  /** The sample in priority order; with several groups, taken from each group in turn (group names in order). */
  result(): string[] {
    const ordered = [...this.groups.keys()]
      .sort()
      .map((key) =>
        [...(this.groups.get(key)?.items ?? [])]
          .sort((a, b) => a.priority - b.priority || (a.item < b.item ? -1 : 1))
          .map((entry) => entry.item),
      );
    if (ordered.length <= 1) return ordered[0] ?? [];
    const picked: string[] = [];
    for (let round = 0; picked.length < this.size; round++) {
      let took = false;
      for (const group of ordered) {
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

/** The group of a relative path when spreading: its top-level folder ('' for files at the root). */
export function topLevelGroup(rel: string): string {
  const slash = rel.indexOf('/');
  return slash < 0 ? '' : rel.slice(0, slash);
}

/** The inode of the empty folder a btrfs snapshot holds where the volume had a nested subvolume. */
const BTRFS_EMPTY_SUBVOL_INO = 2;

/** Folders read at once: the walk is bound by directory reads, which a disk (or loop image) serves in parallel. */
const WALK_CONCURRENCY = 8;

/**
 * Walks the tree under root with a few concurrent readdir calls; `visit` gets each folder's
 * entries and returns its subfolders. Names are read as bytes and relative paths are binary
 * strings (one char per byte), so a name that is not UTF-8 is walked like any other.
 */
async function walkTree(
  root: string,
  signal: AbortSignal | undefined,
  visit: (rel: string, entries: Dirent<Buffer>[]) => string[] | Promise<string[]>,
  unreadable: { path: string; code: string }[],
  placeholders?: string[],
): Promise<number> {
  const pending: string[] = [''];
  let directories = 0;
  let active = 0;
  let failure: unknown;
  await new Promise<void>((resolveAll) => {
    const pump = () => {
      if (failure !== undefined || pending.length === 0) {
        if (active === 0) resolveAll();
        return;
      }
      while (active < WALK_CONCURRENCY && pending.length > 0) {
        const rel = pending.pop() as string;
        active++;
        (async () => {
          signal?.throwIfAborted();
          let entries: Dirent<Buffer>[];
          try {
            entries = await readdir(pathUnder(root, rel), { withFileTypes: true, encoding: 'buffer' });
          } catch (error) {
            unreadable.push({
              path: rel ? displayBinary(rel) : '.',
              code: (error as NodeJS.ErrnoException).code ?? 'EIO',
            });
            return;
          }
          // In a btrfs snapshot a nested subvolume is an empty folder with inode 2: not part of the
          // snapshot's tree (btrfs send leaves it out), so it is reported, not counted.
          if (placeholders && rel && entries.length === 0) {
            const info = await lstat(pathUnder(root, rel)).catch(() => undefined);
            if (info?.isDirectory() && info.ino === BTRFS_EMPTY_SUBVOL_INO) {
              placeholders.push(displayBinary(rel));
              return;
            }
          }
          directories++;
          for (const sub of await visit(rel, entries)) pending.push(sub);
        })()
          .catch((error: unknown) => {
            failure ??= error;
          })
          .finally(() => {
            active--;
            pump();
          });
      }
    };
    pump();
  });
  if (failure !== undefined) throw failure;
  return directories;
}

/**
 * Picks `size` files uniformly at random in one streaming pass over the tree (bottom-k
 * reservoir sampling). Memory holds the sample and the folders still to visit, never the whole
 * tree; the same seed picks the same files whatever order the folders are read in.
 * With `spread`, each top-level folder (and the root's own files) keeps its own reservoir and the
 * sample takes from them in turn, so memory is bounded by size x top-level folders.
 */
export async function sampleTree(root: string, size: number, options: SampleOptions): Promise<TreeSample> {
  const sampler = new ReservoirSampler(size, options.seed);
  const unreadable: TreeSample['unreadable'] = [];
  const placeholders: string[] = [];
  const start = seedState(options.seed);
  const directories = await walkTree(
    root,
    options.signal,
    (rel, entries) => {
      const subdirs: string[] = [];
      // Hash the folder part once; each file then only hashes its own name.
      const prefix = rel ? `${rel}/` : '';
      const dirState = rel ? fnvContinue(start, prefix) : start;
      const group = options.spread && rel ? topLevelGroup(prefix) : '';
      for (const entry of entries) {
        if (entry.isDirectory()) subdirs.push(prefix + binaryOf(entry.name));
        else if (entry.isFile() || entry.isSymbolicLink()) {
          const name = binaryOf(entry.name);
          sampler.offerWithPriority(() => prefix + name, finishPriority(fnvContinue(dirState, name)), group);
        }
      }
      return subdirs;
    },
    unreadable,
    options.nestedPlaceholders ? placeholders : undefined,
  );
  const bytePaths = sampler.result();
  return {
    paths: bytePaths.map(displayBinary),
    bytePaths,
    population: sampler.population,
    directories,
    unreadable,
    placeholders: placeholders.sort(),
  };
}

/** Walks a tree and counts what a full restore must reproduce. */
export interface TreeCensus {
  files: number;
  symlinks: number;
  directories: number;
  bytes: number;
  unreadable: { path: string; code: string }[];
  /** With nestedPlaceholders: empty folders standing for nested subvolumes (not counted). */
  placeholders: string[];
}

export async function censusTree(
  root: string,
  options: {
    signal?: AbortSignal | undefined;
    sizeOf: (path: Buffer) => Promise<number>;
    nestedPlaceholders?: boolean;
  },
): Promise<TreeCensus> {
  const census: TreeCensus = {
    files: 0,
    symlinks: 0,
    directories: 0,
    bytes: 0,
    unreadable: [],
    placeholders: [],
  };
  census.directories = await walkTree(
    root,
    options.signal,
    async (rel, entries) => {
      const subdirs: string[] = [];
      const sizes: Promise<number>[] = [];
      for (const entry of entries) {
        const name = binaryOf(entry.name);
        const child = rel ? `${rel}/${name}` : name;
        if (entry.isDirectory()) subdirs.push(child);
        else if (entry.isSymbolicLink()) census.symlinks++;
        else if (entry.isFile()) {
          census.files++;
          sizes.push(options.sizeOf(pathUnder(root, child)));
        }
      }
      for (const size of await Promise.all(sizes)) census.bytes += size;
      return subdirs;
    },
    census.unreadable,
    options.nestedPlaceholders ? census.placeholders : undefined,
  );
  census.placeholders.sort();
  return census;
}
