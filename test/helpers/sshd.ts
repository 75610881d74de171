import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { inCI, missingComponents } from './env.js';
import { processGone, processRunning } from './process.js';

export const SSHD = '/usr/sbin/sshd';

/**
 * Fleet tests start their own sshd instances on loopback addresses (127.0.0.2, .3, ...): never a
 * connection outside the machine. Skips with the reason when OpenSSH is missing, fails in CI.
 */
export function requireOpenSsh(): boolean {
  const missing = missingComponents(['ssh', 'ssh-keygen', 'btrfs']);
  if (!existsSync(SSHD)) missing.push(`${SSHD} (apt install openssh-server)`);
  if (missing.length === 0) return true;
  const reason = `fleet test needs ${missing.join(', ')}`;
  if (inCI) throw new Error(`${reason} (CI=true: a missing component is a failure)`);
  console.warn(`skipping: ${reason}`);
  return false;
}

export interface SshKey {
  file: string;
  publicKey: string;
}

export async function makeKey(file: string): Promise<SshKey> {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'snapguard-test', '-f', file]);
  return { file, publicKey: (await readFile(`${file}.pub`, 'utf8')).trim() };
}

export interface SshHost {
  name: string;
  address: string;
  port: number;
  dir: string;
  pid: number | undefined;
  /** Starts (or starts again) this host's sshd. */
  start(): Promise<void>;
  /** Stops the listening sshd by its pid (sessions already open stay until their client leaves). */
  stop(): Promise<void>;
  /** The ssh argv that reaches this host with `key` (BatchMode, this lab's known_hosts, no user config). */
  ssh(key: SshKey, remote?: string[]): string[];
}

export interface SshLab {
  dir: string;
  knownHosts: string;
  /** A host: its own host key, sshd_config and authorized_keys (the lines given). */
  host(name: string, address: string, authorizedKeys: string[]): Promise<SshHost>;
  /** Stops every sshd of the lab and every process still running a command of the lab (by pid). */
  cleanup(): Promise<void>;
}

function freePortGuess(): number {
  return 20_000 + Math.floor(Math.random() * 20_000);
}

async function listening(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: address, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Pids of processes whose command line mentions `marker` (the lab's folder), this test's own. */
export function pidsMentioning(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(marker)) found.push(Number(entry));
    } catch {
      // Ended while we looked.
    }
  }
  return found;
}

export async function createSshLab(dir: string): Promise<SshLab> {
  await mkdir('/run/sshd', { recursive: true });
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(knownHosts, '');
  const hosts: SshHost[] = [];
  return {
    dir,
    knownHosts,
    async host(name, address, authorizedKeys) {
      const hostDir = join(dir, `sshd-${name}`);
      await mkdir(hostDir, { recursive: true });
      const hostKey = await makeKey(join(hostDir, 'hostkey'));
      await writeFile(join(hostDir, 'authorized_keys'), `${authorizedKeys.join('\n')}\n`);
      const pidFile = join(hostDir, 'sshd.pid');
      let port = freePortGuess();
      const writeConfig = () =>
        writeFile(
          join(hostDir, 'sshd_config'),
          [
            `Port ${port}`,
            `ListenAddress ${address}`,
            `HostKey ${hostKey.file}`,
            `AuthorizedKeysFile ${join(hostDir, 'authorized_keys')}`,
            'PasswordAuthentication no',
            'KbdInteractiveAuthentication no',
            'StrictModes no',
            'UsePAM no',
            'PermitRootLogin prohibit-password',
            `PidFile ${pidFile}`,
            '',
          ].join('\n'),
        );
      const host: SshHost = {
        name,
        address,
        get port() {
          return port;
        },
        dir: hostDir,
        pid: undefined,
        async start() {
          for (let attempt = 0; attempt < 5; attempt++) {
            await writeConfig();
            await writeFile(pidFile, '');
            try {
              execFileSync(SSHD, ['-f', join(hostDir, 'sshd_config'), '-E', join(hostDir, 'sshd.log')]);
            } catch {
              port = freePortGuess();
              continue;
            }
            for (let i = 0; i < 100; i++) {
              const text = (await readFile(pidFile, 'utf8').catch(() => '')).trim();
              if (text && (await listening(address, port))) {
                host.pid = Number(text);
                return;
              }
              await new Promise((resolve) => setTimeout(resolve, 50));
            }
            port = freePortGuess();
          }
          throw new Error(
            `sshd for ${name} did not start: ${await readFile(join(hostDir, 'sshd.log'), 'utf8').catch(() => '')}`,
          );
        },
        async stop() {
          const pid = host.pid;
          if (pid === undefined) return;
          host.pid = undefined;
          if (processRunning(pid)) process.kill(pid, 'SIGTERM');
          await processGone(pid);
        },
        ssh(key, remote = []) {
          return [
            'ssh',
            '-F',
            '/dev/null',
            '-T',
            '-p',
            String(port),
            '-i',
            key.file,
            '-o',
            'BatchMode=yes',
            '-o',
            'IdentitiesOnly=yes',
            '-o',
            `UserKnownHostsFile=${knownHosts}`,
            '-o',
            'GlobalKnownHostsFile=/dev/null',
            '-o',
            'ConnectTimeout=5',
            `root@${address}`,
            ...remote,
          ];
        },
      };
      await host.start();
      await appendFile(
        knownHosts,
        `[${address}]:${port} ${hostKey.publicKey.split(' ').slice(0, 2).join(' ')}\n`,
      );
      hosts.push(host);
      return host;
    },
    async cleanup() {
      for (const host of hosts) await host.stop().catch(() => undefined);
      // What a session left (the forced command's snapguard): ended by pid, found by the lab's folder.
      for (const pid of pidsMentioning(dir)) {
        try {
          // A group leader (a command snapguard started) takes what it forked along.
          process.kill(-pid, 'SIGTERM');
        } catch {
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            // Already gone.
          }
        }
      }
      for (const pid of pidsMentioning(dir)) await processGone(pid);
    },
  };
}
