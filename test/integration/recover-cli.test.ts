import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createSnapshots } from '../../src/core/snapshots.js';
import { createBtrfsSandbox, type BtrfsSandbox } from '../helpers/btrfs.js';
import { requireComponents } from '../helpers/env.js';

const run = requireComponents(['btrfs', 'mkfs.btrfs', 'script']);
const cli = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));

function runFile(file: string, args: string[], input?: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(file, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

describe.runIf(run)('snapguard recover on the command line: the terminal confirmation', () => {
  let box: BtrfsSandbox;
  let configFile: string;
  let file: string;
  let snapshot: string;
  let snapshotDir: string;

  beforeAll(async () => {
    box = await createBtrfsSandbox(384, 'recover-cli');
    const vol = await box.subvolume('cfg');
    file = join(vol, 'settings.conf');
    await writeFile(file, 'good\n');
    const input = {
      contextDir: join(box.dir, 'context'),
      stateDir: join(box.dir, 'state'),
      volumes: { cfg: { backend: 'btrfs' as const, path: vol } },
    };
    configFile = join(box.dir, 'snapguard.yaml');
    await writeFile(configFile, stringify(input));
    const deps = box.deps(input);
    snapshotDir = deps.config.volumes.cfg!.snapshotDir;
    snapshot = (await createSnapshots(deps, { volumes: ['cfg'], type: 'manual' })).created[0]!.name;
    await writeFile(file, 'bad\n');
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('without a terminal and without --yes it refuses (exit 3) and changes nothing', async () => {
    const out = await runFile(process.execPath, [cli, 'recover', 'cfg', snapshot, '--config', configFile]);
    expect(out.code).toBe(3);
    expect(out.stderr).toMatch(/no terminal to ask on; nothing was changed/);
    expect(out.stderr).toMatch(/--yes/);
    expect(await readFile(file, 'utf8')).toBe('bad\n');
    expect(await readdir(snapshotDir)).toEqual([snapshot]);
  });

  it('--dry-run prints the change summary and the steps, and changes nothing', async () => {
    const out = await runFile(process.execPath, [
      cli,
      'recover',
      'cfg',
      snapshot,
      '--dry-run',
      '--config',
      configFile,
    ]);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/modified: 1\n\s+settings\.conf/);
    expect(out.stdout).toMatch(/move .* aside as cfg-pre-recover-/);
    expect(await readFile(file, 'utf8')).toBe('bad\n');
  });

  it('on a terminal it asks; "n" changes nothing, "y" recovers', async () => {
    const command = `${process.execPath} ${cli} recover cfg ${snapshot} --config ${configFile}`;
    const no = await runFile('script', ['-qec', command, '/dev/null'], 'n\n');
    expect(no.stdout).toMatch(/Proceed with this recovery\? \[y\/N\]/);
    expect(no.stdout).toMatch(/declined: nothing was changed/);
    expect(await readFile(file, 'utf8')).toBe('bad\n');
    const yes = await runFile('script', ['-qec', command, '/dev/null'], 'y\n');
    expect(yes.code, yes.stdout).toBe(0);
    expect(await readFile(file, 'utf8')).toBe('good\n');
  });

  it('--yes recovers without asking', async () => {
    await writeFile(file, 'bad again\n');
    const out = await runFile(process.execPath, [
      cli,
      'recover',
      'cfg',
      snapshot,
      '--yes',
      '--json',
      '--config',
      configFile,
    ]);
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout).status).toBe('recovered');
    expect(await readFile(file, 'utf8')).toBe('good\n');
  });
});

describe.runIf(run)('two recover processes on one volume at once', () => {
  let box: BtrfsSandbox;
  beforeAll(async () => {
    box = await createBtrfsSandbox(384, 'recover-race');
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('never both act: one recovers, the other waits and is refused clearly (or runs after it)', async () => {
    const vol = await box.subvolume('race');
    await writeFile(join(vol, 'f'), 'v1\n');
    const input = {
      contextDir: join(box.dir, 'context'),
      stateDir: join(box.dir, 'state'),
      volumes: { race: { backend: 'btrfs' as const, path: vol } },
    };
    const configFile = join(box.dir, 'snapguard.yaml');
    await writeFile(configFile, stringify(input));
    const deps = box.deps(input);
    const snap = (await createSnapshots(deps, { volumes: ['race'], type: 'manual' })).created[0]!.name;
    await writeFile(join(vol, 'f'), 'v2\n');
    const args = [cli, 'recover', 'race', snap, '--yes', '--json', '--config', configFile];
    const [one, two] = await Promise.all([runFile(process.execPath, args), runFile(process.execPath, args)]);
    const outcomes = [one, two].map((r) =>
      r.code === 0
        ? 'recovered'
        : (JSON.parse(r.stdout) as { error: { code: string; message: string } }).error,
    );
    const recovered = outcomes.filter((o) => o === 'recovered');
    expect(recovered.length).toBeGreaterThanOrEqual(1);
    for (const o of outcomes)
      if (o !== 'recovered') {
        expect(o.code).toBe('CONFIRMATION_INVALID');
        expect(o.message).toMatch(/changed while this recovery waited.*Nothing was changed/);
      }
    expect(await readFile(join(vol, 'f'), 'utf8')).toBe('v1\n');
    const { history } = await deps.history.read();
    expect(history.recoveries).toHaveLength(recovered.length);
    const safeties = (await readdir(deps.config.volumes.race!.snapshotDir)).filter((n) =>
      n.includes('pre-recover'),
    );
    expect(safeties).toHaveLength(recovered.length);
  });
});
