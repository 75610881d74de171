import type { SnapshotBackend } from '../../backends/types.js';
import type { Deps } from '../deps.js';
import type { RecoveryStep } from './journal.js';
import type { RecoveryPlan } from './schemas.js';

// The steps of a recovery, declared once: which steps a volume takes (read by the journal runner,
// engine.ts runJournal) and how each is told to the user in the plan (describeSteps). A step cannot
// be run without being described, nor described without being run.

type PlannedItem = RecoveryPlan['volumes'][number];
type Mode = 'rollback' | 'files';

/** How a volume is recovered: its tree swapped for a snapshot, paths copied over, or files replaced in place (zfs). */
export type RecoveryKind = 'rollback' | 'files' | 'in-place';

interface StepEntry {
  step: RecoveryStep;
  /** The plan's lines for this step of one volume; none when it has nothing to do. */
  describe(item: PlannedItem, mode: Mode): string[];
}

const list = (paths: readonly string[] | undefined) =>
  `${(paths ?? []).slice(0, 10).join(', ')}${(paths?.length ?? 0) > 10 ? ', ...' : ''}`;

const removeOnlyLine = (item: PlannedItem) =>
  item.removeOnly?.length
    ? [
        `${item.volume}: remove ${item.removeOnly.length} top-level entr(ies) absent from the snapshot: ${item.removeOnly.join(', ')}`,
      ]
    : [];

const stopServices: StepEntry = {
  step: 'stop-services',
  describe: (item) =>
    item.services.units.length
      ? [
          `${item.volume}: stop ${item.services.units.join(', ')}${item.services.scope === 'user' ? ' (user scope)' : ''}`,
        ]
      : [],
};

/** The steps that change the volume, per kind, in the order they run. */
export const SWAP_STEPS: Record<RecoveryKind, readonly StepEntry[]> = {
  // zfs datasets are never swapped: a safety snapshot, then their files are replaced (docs/zfs.md).
  'in-place': [
    stopServices,
    {
      step: 'safety-snapshot',
      describe: (item) => [
        `${item.volume}: zfs snapshot of the current state as ${item.safetyBackup} (kept; recover it to undo)`,
      ],
    },
    {
      step: 'copy',
      describe: (item, mode) => [
        mode === 'rollback'
          ? `${item.volume}: replace every file under ${item.volumePath} with the files of ${item.snapshot} (cp -a; no zfs rollback, nothing destroyed)`
          : `${item.volume}: copy ${item.paths?.length ?? 0} path(s) from ${item.snapshot} over the live ones (cp -a): ${list(item.paths)}`,
        ...(mode === 'files' ? removeOnlyLine(item) : []),
        ...(item.newerSnapshotsEffect ? [`${item.volume}: ${item.newerSnapshotsEffect}`] : []),
      ],
    },
  ],
  rollback: [
    stopServices,
    {
      step: 'move-aside',
      describe: (item) => [
        `${item.volume}: move ${item.volumePath} aside as ${item.safetyBackup} (kept read-only; recover it to undo)`,
      ],
    },
    {
      step: 'restore',
      describe: (item) => [
        `${item.volume}: create a writable snapshot of ${item.snapshot} at ${item.volumePath}`,
      ],
    },
    {
      step: 'carry-nested',
      describe: (item) =>
        item.nestedSubvolumes?.length
          ? [
              `${item.volume}: move the nested subvolume(s) ${item.nestedSubvolumes.join(', ')} from the old tree into the new one at the same place, with their current files (snapshots of the volume do not contain them, so they are not rolled back)`,
            ]
          : [],
    },
    // Told with move-aside: the safety snapshot is "kept read-only".
    { step: 'protect-safety', describe: () => [] },
  ],
  files: [
    stopServices,
    {
      step: 'safety-snapshot',
      describe: (item) => [
        `${item.volume}: snapshot the current state read-only as ${item.safetyBackup} (kept; recover it to undo)`,
      ],
    },
    {
      step: 'copy',
      describe: (item) => [
        `${item.volume}: copy ${item.paths?.length ?? 0} path(s) from ${item.snapshot} over the live ones (owners, modes, times, xattrs, symlinks kept): ${list(item.paths)}`,
        ...removeOnlyLine(item),
        ...(item.nestedSubvolumes?.length
          ? [
              `${item.volume}: keep the nested subvolume(s) ${item.nestedSubvolumes.join(', ')} where they are, with their current files (snapshots of the volume do not contain them)`,
            ]
          : []),
      ],
    },
  ],
};

/** The steps every volume takes once the swap of all of them is done, in the order they run. */
export const FINISH_STEPS: readonly StepEntry[] = [
  {
    step: 'start-services',
    describe: (item) =>
      item.services.units.length
        ? [
            `${item.volume}: start ${item.services.units.join(', ')} and check they are active after the settle time`,
          ]
        : [],
  },
  {
    step: 'validate',
    describe: (item) => item.validate.map((check) => `${item.volume}: validate with \`${check}\``),
  },
];

/** How a volume of this backend is recovered: backends that replace files in place offer replaceTree. */
export function recoveryKind(backend: SnapshotBackend, mode: Mode): RecoveryKind {
  return backend.replaceTree !== undefined ? 'in-place' : mode;
}

/** The swap steps of one volume, by name. */
export function swapStepsOf(kind: RecoveryKind): readonly RecoveryStep[] {
  return SWAP_STEPS[kind].map((entry) => entry.step);
}

/**
 * The order the runner takes the swap steps in across all volumes of a recovery: each step for
 * every volume that has it, before the next step (volumes of the mode's kind first, then in-place ones).
 */
export function swapOrder(mode: Mode): readonly RecoveryStep[] {
  return [...new Set([...swapStepsOf(mode), ...swapStepsOf('in-place')])];
}

/** The plan's steps, as the user reads them: per volume, each step it will take, then the history record. */
export function describeSteps(deps: Deps, mode: Mode, items: RecoveryPlan['volumes']): string[] {
  const steps: string[] = [];
  for (const item of items) {
    const volume = deps.config.volumes[item.volume];
    const kind = volume ? recoveryKind(deps.backendFor(volume), mode) : mode;
    for (const entry of [...SWAP_STEPS[kind], ...FINISH_STEPS]) steps.push(...entry.describe(item, mode));
  }
  steps.push('record the recovery in backup-history.json');
  return steps;
}
