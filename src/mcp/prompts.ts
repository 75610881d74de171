import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { GetPromptResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import type { Deps } from '../core/deps.js';
import { listSnapshots } from '../core/snapshots.js';

export const PROMPT_NAMES = ['safe-deploy', 'disaster-recovery', 'find-lost-file'] as const;

function volumeList(deps: Deps, requested: string | undefined): string {
  if (requested?.trim()) return requested.trim();
  const ids = Object.keys(deps.config.volumes);
  return ids.length > 0 ? ids.join(', ') : '(no volumes configured: read snapguard://config)';
}

function userMessage(text: string): GetPromptResult {
  return { messages: [{ role: 'user', content: { type: 'text', text } }] };
}

/** Configured volume ids that start with what was typed. */
export function completeVolume(deps: Deps, typed: string | undefined): string[] {
  return Object.keys(deps.config.volumes)
    .filter((id) => id.startsWith(typed ?? ''))
    .sort();
}

/** A comma-separated list of volume ids: completes the last one, keeping those before it. */
export function completeVolumeList(deps: Deps, typed: string | undefined): string[] {
  const parts = (typed ?? '').split(',');
  const last = (parts.pop() ?? '').trim();
  const before = parts.map((part) => part.trim()).filter(Boolean);
  return completeVolume(deps, last)
    .filter((id) => !before.includes(id))
    .map((id) => [...before, id].join(','));
}

/**
 * Names of snapguard's own snapshots, newest first, that start with what was typed: of the volume
 * already chosen in the prompt's arguments, or of every volume when none is chosen yet.
 */
export async function completeSnapshot(
  deps: Deps,
  typed: string | undefined,
  volume: string | undefined,
): Promise<string[]> {
  const chosen = volume && volume in deps.config.volumes ? volume : undefined;
  try {
    const { snapshots } = await listSnapshots(deps, chosen ? { volume: chosen } : {});
    return [...new Set(snapshots.map((snapshot) => snapshot.name))].filter((name) =>
      name.startsWith(typed ?? ''),
    );
  } catch (error) {
    // A volume that cannot be listed right now offers nothing to complete; getting the prompt still works.
    deps.logger.debug({ err: error }, 'snapshot names for completion not listed');
    return [];
  }
}

/** Operation ids recorded in the history, newest first (of the chosen volume, when one is chosen). */
export async function completeOperationId(
  deps: Deps,
  typed: string | undefined,
  volume: string | undefined,
): Promise<string[]> {
  const { history } = await deps.history.read();
  const ids = history.snapshots
    .filter((entry) => !volume || !(volume in deps.config.volumes) || entry.subvolume === volume)
    .sort((a, b) => b.timestamp.localeCompare(a.timestamp))
    .map((entry) => entry.operation_id)
    .filter((id): id is string => typeof id === 'string' && id.startsWith(typed ?? ''));
  return [...new Set(ids)];
}

/** The runbook for a deployment or config change with a snapshot before it and a rollback path after it. */
export function safeDeployText(deps: Deps, args: { service: string; volumes?: string | undefined }): string {
  const volumes = volumeList(deps, args.volumes);
  const operation = `deploy-${args.service
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')}`;
  return [
    `Deploy "${args.service}" safely with snapguard. Volumes involved: ${volumes}.`,
    '',
    '1. Pre-flight: call health_check (for each volume). If overall is CRITICAL, stop and tell me the findings and their remedies; do not deploy.',
    `2. Snapshot: call create_snapshot with volumes [${volumes}], type "pre-deploy" and operation "${operation}". Keep the operationId. If a volume is reported in skipped, the volume has not changed since that recent snapshot, so it is the rollback point and belongs to this operationId; say so.`,
    `3. Deploy: make the change for ${args.service}.`,
    '4. Validate: check that the service is up and answers (its unit is active, its health endpoint responds, its logs show no errors).',
    '5a. If validation passes: call complete_operation with the operationId and outcome "success".',
    '5b. If validation fails: call complete_operation with outcome "failed", then call recover with the volume and the pre-deploy snapshot name from step 2 (mode "rollback"). The first recover call returns a plan and asks for confirmation: show me the plan and act only when I confirm (pass the confirmationToken back on the second call).',
    '6. Report what was done: the snapshot names, the outcome and, after a rollback, the safety snapshot that holds the state before the rollback.',
    '',
    'Never delete snapshots while doing this; snapguard keeps the history in snapguard://history.',
  ].join('\n');
}

/** The runbook for bringing a broken service back from a snapshot, with the confirmation gate. */
export function disasterRecoveryText(
  deps: Deps,
  args: {
    volume?: string | undefined;
    problem?: string | undefined;
    snapshot?: string | undefined;
    operationId?: string | undefined;
  },
): string {
  const volume = volumeList(deps, args.volume);
  const known = [
    args.snapshot?.trim()
      ? `The user named the snapshot ${args.snapshot.trim()}: confirm in step 2 that it predates the problem.`
      : '',
    args.operationId?.trim()
      ? `The change of operation ${args.operationId.trim()} is suspected: recover with operationId ${args.operationId.trim()} rolls back every volume it snapshotted, together.`
      : '',
  ].filter(Boolean);
  return [
    `Recover from a failure with snapguard. Volume(s): ${volume}.${args.problem?.trim() ? ` Problem reported: ${args.problem.trim()}` : ''}`,
    ...known,
    '',
    '1. Assess: call health_check for the volume and read snapguard://history for recent deployments and their outcomes; find when the problem started.',
    '2. Choose a snapshot: call list_snapshots for the volume (newest first). Prefer the newest snapshot taken before the problem started, e.g. the pre-deploy snapshot of the change that broke it. Tell me which one and how old it is.',
    '3. Decide the scope: if only some files are damaged, use recover with mode "files" and the relative paths; otherwise mode "rollback" restores the whole volume.',
    '4. Preview: call recover with dryRun: true (or without a confirmationToken) to get the plan: which services are stopped, what is moved aside as the pre-recover safety snapshot, and what is restored.',
    '5. Confirm: show me the plan and wait for my explicit yes. Then call recover again with the same arguments and the confirmationToken. If the token was refused because the state changed, preview again.',
    '6. Validate: check the result (status recovered, validation) and that the service works again. If the result is worse, the safety snapshot named in the result holds the state from before the recovery and can be restored the same way.',
    '7. Afterwards: call run_restore_test for the volume to prove the remaining snapshots restore, and report the recoveryId, the duration and the safety snapshot.',
    '',
    'Never skip the confirmation and never delete snapshots during a recovery.',
  ].join('\n');
}

/** The walk from "I lost this file" to the right version of it, brought back beside the original or in place. */
export function findLostFileText(args: { volume: string; path: string; when?: string | undefined }): string {
  const volume = JSON.stringify(args.volume.trim());
  const path = JSON.stringify(args.path.trim());
  const when = args.when?.trim();
  return [
    `Find a lost or damaged file with snapguard and bring the right version of it back. Volume: ${volume}. Path (relative to the volume root): ${path}.${when ? ` When it was last right, as I remember it: ${when}.` : ''}`,
    'Everything up to step 5 only reads; nothing on the volume changes.',
    '',
    `1. Was it deleted? Call find_deleted with volume ${volume} and path set to the folder that held it (or ${path} itself if it was a folder)${when ? ', and since set to a time a little before that' : ''}. Each entry names the newest snapshot that still holds it. Names that are not UTF-8 are shown escaped, with pathBase64 holding the raw bytes.`,
    `2. Which versions exist? Call file_versions with volume ${volume} and path ${path}. Identical copies are grouped: each version lists every snapshot holding it, with size, mtime and owner; the live one is marked live. Snapshots where it is absent are listed under absent. If it is not found, add includeForeign: true and location "all" (other tools' snapshots and external copies are read too).`,
    `3. Look before choosing: call read_snapshot_file with volume ${volume}, a snapshot from step 2 and path ${path} to see that version's text (binary files give size and sha256 only).${when ? ` Prefer the newest version from before ${when}.` : ''}`,
    `4. What changed around it: call diff_snapshots with volume ${volume}, from the chosen snapshot (leave to out to compare with the live volume) and path ${path}; for one small text file patch: true gives a unified diff. Show me the version you picked, its snapshot name and date, and why.`,
    `5. Bring it back. Preferred: call recover with volume ${volume}, that snapshot, mode "files", paths [${path}] and destination "beside". It writes the old version next to the original as NAME.snapguard-YYYYMMDD-HHMMSS, never overwrites anything and needs no confirmation; tell me the written path from the result so I can compare and swap it myself.`,
    '   Only if I ask for it in place: call recover without destination. Its first call returns a plan (the services stopped, the pre-recover safety snapshot keeping the current state); show me the plan, wait for my explicit yes, then call again with the same arguments and the confirmationToken. In-place restores read only snapshots snapguard made.',
    '6. Report: the snapshot the version came from, the path written (beside) or the safety snapshot (in place), and how to undo it.',
  ].join('\n');
}

export function registerPrompts(server: McpServer, deps: Deps): string[] {
  server.registerPrompt(
    'safe-deploy',
    {
      title: 'Deploy with a snapshot and a rollback path',
      description:
        'Walks through a deployment or config change: health check, pre-deploy snapshot, change, validation, then complete_operation or a confirmed rollback.',
      argsSchema: {
        service: z.string().describe('the service or change being deployed, e.g. immich'),
        volumes: completable(
          z
            .string()
            .optional()
            .describe('comma-separated volume ids the change touches (default: all configured volumes)'),
          (typed) => completeVolumeList(deps, typed),
        ),
      },
    },
    (args) => userMessage(safeDeployText(deps, args)),
  );
  server.registerPrompt(
    'disaster-recovery',
    {
      title: 'Recover a broken service from a snapshot',
      description:
        'Walks through a recovery: assess with health_check and the history, choose a snapshot with list_snapshots, preview and confirm recover, validate, then run_restore_test.',
      argsSchema: {
        volume: completable(
          z.string().optional().describe('the volume id to recover (default: ask which one)'),
          (typed) => completeVolume(deps, typed),
        ),
        problem: z.string().optional().describe('what is broken, in a sentence'),
        snapshot: completable(
          z.string().optional().describe('the snapshot to return to, when already known'),
          (typed, context) => completeSnapshot(deps, typed, context?.arguments?.['volume']),
        ),
        operationId: completable(
          z
            .string()
            .optional()
            .describe('the operation whose change broke it (its volumes are rolled back together)'),
          (typed, context) => completeOperationId(deps, typed, context?.arguments?.['volume']),
        ),
      },
    },
    (args) => userMessage(disasterRecoveryText(deps, args)),
  );
  server.registerPrompt(
    'find-lost-file',
    {
      title: 'Find a lost file and restore the right version',
      description:
        'Walks from "I lost this file" to the right version: find_deleted, file_versions, read_snapshot_file and diff_snapshots to choose it, then recover beside the original (no confirmation) or in place (confirmed).',
      argsSchema: {
        volume: z.string().describe('the volume id that held the file'),
        path: z.string().describe('the lost or damaged file or folder, relative to the volume root'),
        when: z
          .string()
          .optional()
          .describe('when it was last right, in words or as a time, e.g. "before Tuesday" or 2026-11-21'),
      },
    },
    (args) => userMessage(findLostFileText(args)),
  );
  return [...PROMPT_NAMES];
}
