import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { cliPath, requireBuiltCli } from '../helpers/cli.js';
import { requireComponents } from '../helpers/env.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The fenced ```bash blocks of the README after a marker line, in order. */
function bashBlocksAfter(readme: string, marker: string): string[] {
  const from = readme.indexOf(marker);
  if (from < 0) throw new Error(`README has no "${marker}"`);
  const blocks: string[] = [];
  const fence = /```bash\n([\s\S]*?)```/g;
  fence.lastIndex = from;
  for (let m = fence.exec(readme); m; m = fence.exec(readme)) blocks.push(m[1]!);
  return blocks;
}

// The install line is checked, not run: it would replace node_modules and install globally on the
// machine running the tests (test/e2e/package.test.ts packs and installs the package for real).
const INSTALL = 'npm ci && npm run build && npm install -g .';

const enabled = requireComponents(['btrfs', 'mkfs.btrfs', 'jq', 'unshare']);

/**
 * Follows the README as a newcomer would, as root: the first screen (`snapguard demo`) and the
 * tour (init, snapshot create, complete, history, the file history, and the first protected
 * deployment with `wrap --auto-rollback`: one that works, one rolled back), literally, from its fenced blocks. Two
 * substitutions only: `/mnt/pool` is a loop-mounted btrfs image with a subvolume `containers`,
 * and `snapguard` is the built CLI (`node dist/cli/index.js`, a shell function). The commands run
 * in a private mount namespace with a tmpfs on /var/lib and HOME in a temp folder, so the defaults
 * init writes (/var/lib/snapguard, ~/.claude/context) stay out of this machine's real ones.
 */
describe.runIf(enabled)('the README, followed literally', () => {
  let sandbox: BtrfsSandbox;
  let work: string;

  beforeAll(async () => {
    requireBuiltCli();
    sandbox = await createBtrfsSandbox(256, 'readme');
    await sandbox.subvolume('containers');
    await writeFile(join(sandbox.pool.mountPoint, 'containers', 'compose.yml'), 'services: {}\n');
    // The tour's volume holds immich/.env, as the README says.
    await mkdir(join(sandbox.pool.mountPoint, 'containers', 'immich'));
    await writeFile(join(sandbox.pool.mountPoint, 'containers', 'immich', '.env'), 'DB_PASSWORD=first\n');
    work = join(sandbox.dir, 'work');
    await mkdir(join(work, 'home'), { recursive: true });
  }, 120_000);
  afterAll(async () => {
    await sandbox?.cleanup();
  });

  it('first screen and tour: demo, init, snapshot create, complete, history, a protected deployment and its rollback', async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    const [firstScreen] = bashBlocksAfter(readme, '**Try it**');
    const [tour] = bashBlocksAfter(readme, '## A five-minute tour');
    const firstLines = firstScreen!.trim().split('\n');
    expect(firstLines[0]!.split('#')[0]!.trim()).toBe(INSTALL);
    expect(tour).toContain('snapguard init');
    const pool = sandbox.pool.mountPoint;
    const commands = [firstLines.slice(1).join('\n'), tour!.replaceAll('/mnt/pool', pool)].join('\n');
    const script = [
      'set -euo pipefail',
      'mount -t tmpfs tmpfs /var/lib',
      `snapguard() { node ${JSON.stringify(cliPath)} "$@"; }`,
      `cd ${JSON.stringify(work)}`,
      // Each README command is echoed to stderr as it runs: the last one shown is the one that failed.
      "PS4='README> '",
      'set -x',
      commands,
    ].join('\n');
    const home = join(work, 'home');
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        'unshare',
        ['--mount', '--propagation', 'private', 'bash', '-c', script],
        { env: { ...process.env, HOME: home }, timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
        (error, stdout, stderr) =>
          resolve({
            code: error
              ? typeof (error as { code?: unknown }).code === 'number'
                ? (error as { code: number }).code
                : null
              : 0,
            stdout,
            stderr,
          }),
      );
    });
    // xtrace repeats PS4's first character per level of nesting: `op=$(snapguard ...)` is RREADME>.
    const ran = run.stderr.split('\n').filter((line) => /^R*README> snapguard /.test(line));
    expect(run.code, `a README command failed: ${ran.at(-1)}\n${run.stderr.slice(-3000)}`).toBe(0);
    expect(ran.map((line) => line.split(' ')[2])).toEqual([
      'demo',
      'init',
      'init',
      'snapshot',
      'snapshot',
      'complete',
      'history',
      'snapshot',
      'versions',
      'deleted',
      'diff',
      'cat',
      'recover',
      'wrap',
      'wrap',
    ]);
    expect(run.stdout).toContain('Demo finished: snapshot, skip, list');
    expect(run.stdout).toContain(`Wrote ${join(work, 'snapguard.yaml')}.`);
    expect(run.stdout).toContain(`path: ${pool}/containers`);
    // The history init's default contextDir points at holds the tour's completed snapshot.
    const history = JSON.parse(
      await readFile(join(home, '.claude', 'context', 'backup-history.json'), 'utf8'),
    ) as {
      snapshots: { subvolume: string; operation?: string; outcome: string; type: string }[];
      recoveries: {
        subvolume: string;
        reason?: string;
        outcome: string;
        mode: string;
        destination?: string;
      }[];
    };
    expect(history.snapshots).toEqual([
      expect.objectContaining({ subvolume: 'containers', operation: 'deploy-immich', outcome: 'success' }),
      // The tour's protected deployments: one that worked, one rolled back by its failed check.
      expect.objectContaining({ operation: 'deploy-immich-v2', type: 'pre-deploy', outcome: 'success' }),
      expect.objectContaining({ operation: 'deploy-immich-v3', type: 'pre-deploy', outcome: 'failed' }),
      // The rollback kept the state it replaced.
      expect.objectContaining({ subvolume: 'containers', type: 'pre-recover' }),
    ]);
    expect(history.recoveries).toEqual([
      expect.objectContaining({ subvolume: 'containers', mode: 'files', destination: 'beside' }),
      expect.objectContaining({
        subvolume: 'containers',
        mode: 'rollback',
        reason: 'validation-failed',
        outcome: 'success',
      }),
    ]);
    expect(run.stderr).toContain('outcome: failed (validation-failed)');
    expect(run.stdout).toContain('deployment failed and was rolled back: image: immich:v2');
    expect(await readFile(join(pool, 'containers', 'immich', 'compose.yml'), 'utf8')).toBe(
      'image: immich:v2\n',
    );
    expect(run.stdout).toMatch(/containers-pre-deploy-deploy-immich-\d{8}-\d{6}/);
    // recover --beside wrote the snapshot's version next to the original and left the original alone.
    const immich = join(pool, 'containers', 'immich');
    const beside = (await readdir(immich)).filter((name) => name.startsWith('.env.snapguard-'));
    expect(beside).toHaveLength(1);
    expect(await readFile(join(immich, beside[0]!), 'utf8')).toBe('DB_PASSWORD=first\n');
    expect(await readFile(join(immich, '.env'), 'utf8')).toBe('DB_PASSWORD=first\n');
  }, 320_000);
});
