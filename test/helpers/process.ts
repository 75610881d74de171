import { existsSync, readFileSync } from 'node:fs';

/** Whether a process still runs (a zombie waiting to be reaped does not). */
export function processRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** True once the process no longer runs; a killed process may take a moment to be reaped. */
export async function processGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && processRunning(pid); i++) await new Promise((r) => setTimeout(r, 20));
  return !processRunning(pid);
}

/** The pid a command wrote to file (e.g. `echo $! > file`), waiting until it is there. */
export async function pidFromFile(file: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const text = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
    if (/^\d+$/.test(text)) return Number(text);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no pid in ${file}`);
}
