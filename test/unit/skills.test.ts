import { execFile } from 'node:child_process';
import { access, constants, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

const run = promisify(execFile);
const skillsDir = fileURLToPath(new URL('../../skills', import.meta.url));

interface Skill {
  folder: string;
  frontmatter: Record<string, unknown>;
  body: string;
}

/** Splits SKILL.md into its YAML frontmatter and body the way an Agent Skills loader does. */
async function loadSkill(folder: string): Promise<Skill> {
  const text = await readFile(join(skillsDir, folder, 'SKILL.md'), 'utf8');
  const match = /^---\n([\s\S]*?)\n---\n([\s\S]*)$/.exec(text);
  if (!match) throw new Error(`${folder}/SKILL.md does not start with a --- frontmatter block`);
  return { folder, frontmatter: parseYaml(match[1]!) as Record<string, unknown>, body: match[2]! };
}

const folders = (await readdir(skillsDir, { withFileTypes: true }))
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();

describe('skills/ follows the Agent Skills format', () => {
  it('has the two skills', () => {
    expect(folders).toEqual(['backup-integration', 'homelab-deployment']);
  });

  describe.each(folders)('%s', (folder) => {
    it('has frontmatter with name = folder name and a description of what and when', async () => {
      const skill = await loadSkill(folder);
      expect(skill.frontmatter.name).toBe(folder);
      expect(folder).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(folder.length).toBeLessThanOrEqual(64);
      const description = skill.frontmatter.description;
      expect(typeof description).toBe('string');
      expect((description as string).length).toBeGreaterThan(50);
      expect((description as string).length).toBeLessThanOrEqual(1024);
      expect(description).toMatch(/\b(Use it|Use when|when)\b/);
      expect(
        Object.keys(skill.frontmatter).every((k) =>
          ['name', 'description', 'license', 'metadata', 'allowed-tools', 'compatibility'].includes(k),
        ),
      ).toBe(true);
    });

    it('has a body under 500 lines', async () => {
      const skill = await loadSkill(folder);
      expect(skill.body.trim().length).toBeGreaterThan(0);
      expect(skill.body.split('\n').length).toBeLessThan(500);
    });

    it('keeps scripts/ and references/ one level deep, and every file it links exists', async () => {
      const entries = await readdir(join(skillsDir, folder), { withFileTypes: true });
      for (const entry of entries) {
        if (entry.isFile()) {
          expect(entry.name).toBe('SKILL.md');
          continue;
        }
        expect(['scripts', 'references', 'assets']).toContain(entry.name);
        const inner = await readdir(join(skillsDir, folder, entry.name), { withFileTypes: true });
        for (const file of inner) expect(file.isFile(), `${folder}/${entry.name}/${file.name}`).toBe(true);
      }
      const skill = await loadSkill(folder);
      const linked = [...skill.body.matchAll(/\b((?:scripts|references)\/[A-Za-z0-9._-]+)/g)].map(
        (m) => m[1]!,
      );
      for (const path of new Set(linked)) await access(join(skillsDir, folder, path));
    });

    it('has executable scripts that bash parses and that print usage with exit 3 when called wrong', async () => {
      const dir = join(skillsDir, folder, 'scripts');
      const scripts = await readdir(dir).catch(() => [] as string[]);
      for (const script of scripts) {
        const file = join(dir, script);
        expect((await stat(file)).mode & 0o111, `${script} is executable`).not.toBe(0);
        await access(file, constants.X_OK);
        await run('bash', ['-n', file]);
        const called = await run(file, []).then(
          () => 0,
          (error: { code: number; stderr: string }) => {
            expect(error.stderr).toMatch(/^usage: /m);
            return error.code;
          },
        );
        expect(called).toBe(3);
      }
    });
  });
});
