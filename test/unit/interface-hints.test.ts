import { describe, expect, it } from 'vitest';
import { fromSystemError, hintOf, SnapguardError, toSnapguardError } from '../../src/shared/errors.js';

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
