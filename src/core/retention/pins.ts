import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import { z } from 'zod';
import { requireVolume } from '../config.js';
import type { Deps } from '../deps.js';
import { SnapguardError } from '../errors.js';
import { withLock } from '../lock.js';
import { requireOwnedSnapshot, type CallContext } from '../snapshots.js';
import { parseInput } from '../validate.js';
import { VolumeIdSchema } from '../schemas.js';
import { SnapshotNameSchema } from '../naming.js';

export const PinSchema = z.object({
  volume: z.string(),
  snapshot: z.string(),
  reason: z.string().nullable(),
  pinnedAt: z.string().describe('ISO 8601, UTC'),
});
export type Pin = z.infer<typeof PinSchema>;

const PinFileSchema = z.object({ version: z.literal(1), pins: z.array(PinSchema) });

export const PinSnapshotInput = z.object({
  volume: VolumeIdSchema,
  snapshot: SnapshotNameSchema,
  pinned: z.boolean().default(true).describe('true pins (never pruned), false removes the pin'),
  reason: z.string().max(500).optional().describe('why it is kept, shown in prune plans'),
  dryRun: z.boolean().default(false).describe('say what would change, change nothing'),
});

export const PinSnapshotResultSchema = z.object({
  volume: z.string(),
  snapshot: z.string(),
  pinned: z.boolean(),
  changed: z.boolean().describe('false when it already was in the requested state'),
  dryRun: z.boolean(),
  pins: z.array(PinSchema).describe('every pin of this volume after the call'),
});
export type PinSnapshotResult = z.infer<typeof PinSnapshotResultSchema>;

export function pinsFile(deps: Deps): string {
  return join(deps.config.stateDir, 'pins.json');
}

/** Reads the pins; a file that does not parse is an error, never silently "no pins". */
export async function readPins(deps: Deps): Promise<Pin[]> {
  const file = pinsFile(deps);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const parsed = PinFileSchema.safeParse(
    (() => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        return undefined;
      }
    })(),
  );
  if (!parsed.success) {
    // Pins protect snapshots from deletion: without a readable list, pruning must stop.
    throw new SnapguardError(
      'PRECONDITION_FAILED',
      `The pin file ${file} does not parse, so snapguard cannot tell which snapshots are pinned.`,
      'Fix or restore the file (it is JSON: {"version":1,"pins":[{"volume","snapshot","reason","pinnedAt"}]}); nothing was pruned.',
    );
  }
  return parsed.data.pins;
}

async function writePins(deps: Deps, pins: Pin[]): Promise<void> {
  await writeFileAtomic(pinsFile(deps), `${JSON.stringify({ version: 1, pins }, null, 2)}\n`, {
    syncDir: true,
  });
}

/** Pins or unpins an owned snapshot; durable in stateDir/pins.json, plus a native hold where the backend has one. */
export async function pinSnapshot(
  deps: Deps,
  input: unknown,
  call: CallContext = {},
): Promise<PinSnapshotResult> {
  const request = parseInput(PinSnapshotInput, input, 'pin_snapshot');
  const volume = requireVolume(deps.config, request.volume);
  await mkdir(deps.config.stateDir, { recursive: true });
  const lockFile = join(deps.config.stateDir, 'locks', 'pins.lock');
  await mkdir(join(deps.config.stateDir, 'locks'), { recursive: true });
  return withLock(
    lockFile,
    { purpose: 'pin update', waitMs: 30_000, logger: deps.logger, what: 'The pin file' },
    async () => {
      const pins = await readPins(deps);
      const index = pins.findIndex((pin) => pin.volume === volume.id && pin.snapshot === request.snapshot);
      const existing = index >= 0 ? pins[index] : undefined;
      const backend = deps.backendFor(volume);
      // Only owned, existing snapshots can be pinned: a pin on a typo would protect nothing.
      if (request.pinned) await requireOwnedSnapshot(deps, volume, request.snapshot, call.signal);
      const after = [...pins];
      let changed = false;
      if (request.pinned && !existing) {
        after.push({
          volume: volume.id,
          snapshot: request.snapshot,
          reason: request.reason ?? null,
          pinnedAt: deps.clock().toISOString(),
        });
        changed = true;
      } else if (
        request.pinned &&
        existing &&
        request.reason !== undefined &&
        existing.reason !== request.reason
      ) {
        after[index] = { ...existing, reason: request.reason };
        changed = true;
      } else if (!request.pinned && existing) {
        after.splice(index, 1);
        changed = true;
      }
      if (changed && !request.dryRun) {
        // A backend with native holds (zfs) puts its own pin tag on the snapshot (no tag passed).
        if (request.pinned && !existing) {
          await backend.hold?.(volume, request.snapshot, undefined, { signal: call.signal });
        } else if (!request.pinned) {
          const exists = await backend.show(volume, request.snapshot, { signal: call.signal });
          if (exists) await backend.release?.(volume, request.snapshot, undefined, { signal: call.signal });
        }
        await writePins(deps, after);
      }
      deps.logger.info(
        { volume: volume.id, snapshot: request.snapshot, pinned: request.pinned, changed },
        'pin updated',
      );
      return {
        volume: volume.id,
        snapshot: request.snapshot,
        pinned: request.pinned,
        changed,
        dryRun: request.dryRun,
        pins: (request.dryRun ? pins : after).filter((pin) => pin.volume === volume.id),
      };
    },
  );
}
