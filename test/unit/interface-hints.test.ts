import { describe, expect, it } from 'vitest';
import { fromSystemError, hintOf, SnapguardError, toSnapguardError } from '../../src/shared/errors.js';
import { besideSuffix } from '../../src/core/recovery/beside.js';
import type { ListedSnapshot } from '../../src/core/schemas.js';

describe('hints of errors snapguard cannot attribute to the user', () => {
  it('an unexpected error asks for the tool call over MCP and for --json output on the CLI', () => {
    const error = toSnapguardError(new TypeError('x is undefined'));
    expect(error.code).toBe('INTERNAL');
    expect(error.hintFor('mcp')).toBe('This is a bug in snapguard; report the tool call and this message.');
    expect(error.hintFor('mcp')).not.toContain('--json');
    expect(error.hintFor('cli')).toContain('rerun with --json');
  });

  it('a full disk names prune_snapshots and health_check over MCP, snapguard prune and health on the CLI', () => {
    const error = fromSystemError(Object.assign(new Error('no space'), { code: 'ENOSPC' }))!;
    expect(error.hintFor('mcp')).toContain('call prune_snapshots');
    expect(error.hintFor('mcp')).toContain('health_check');
    expect(error.hintFor('mcp')).not.toContain('snapguard ');
    expect(error.hintFor('cli')).toContain('snapguard prune');
    expect(error.hintFor('cli')).not.toContain('prune_snapshots');
  });

  it('a new error built from another keeps both forms of its hint', () => {
    const inner = new SnapguardError('PATH_MISSING', 'gone', { mcp: 'call x', cli: 'run x' });
    const outer = new SnapguardError('PATH_MISSING', 'still gone', hintOf(inner));
    expect(outer.hintFor('mcp')).toBe('call x');
    expect(outer.hintFor('cli')).toBe('run x');
    expect(hintOf(new SnapguardError('BUSY', 'busy', 'wait'))).toBe('wait');
  });
});

describe('recover beside a snapshot without a known creation time', () => {
  // Not produced for real: a listing always carries a valid ISO time (an invalid one fails the
  // listing itself), so the snapshot is written by hand here.
  const snapshot = (location: 'local' | 'external'): ListedSnapshot => ({
    name: 'app-manual-20260101-000000',
    volume: 'app',
    path: '/srv/app/.snapshots/app-manual-20260101-000000',
    createdAt: 'not a time',
    readOnly: true,
    location,
    ageSeconds: 0,
    owned: true,
  });

  const refusal = (location: 'local' | 'external'): SnapguardError => {
    try {
      besideSuffix(snapshot(location));
    } catch (caught) {
      return caught as SnapguardError;
    }
    throw new Error('besideSuffix accepted a snapshot without a creation time');
  };

  it('(hand-made snapshot) names read_snapshot_file over MCP, snapguard cat and recover --files on the CLI', () => {
    const error = refusal('local');
    expect(error.code).toBe('PRECONDITION_FAILED');
    expect(error.message).toContain('has no known creation time');
    expect(error.hintFor('mcp')).toContain('read_snapshot_file');
    expect(error.hintFor('mcp')).toContain('destination');
    expect(error.hintFor('mcp')).not.toContain('snapguard ');
    expect(error.hintFor('cli')).toContain('`snapguard cat app app-manual-20260101-000000 PATH`');
    expect(error.hintFor('cli')).toContain('`snapguard recover app app-manual-20260101-000000 --files PATH`');
    expect(error.hintFor('cli')).not.toContain('read_snapshot_file');
    // An external copy cannot be restored in place: only reading it is offered.
    const external = refusal('external');
    expect(external.hintFor('mcp')).toBe(
      'Instead, read the file with read_snapshot_file (volume "app", snapshot "external:app-manual-20260101-000000").',
    );
    expect(external.hintFor('cli')).toBe(
      'Instead, print the file with `snapguard cat app external:app-manual-20260101-000000 PATH`.',
    );
  });
});
