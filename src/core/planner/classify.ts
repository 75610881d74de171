import type { Tier } from '../config.js';

export type Database = 'postgresql' | 'mysql' | 'mongodb' | 'redis' | 'sqlite';

export interface Classification {
  tier: Tier;
  /** The rule that decided, in words ("database files: /var/lib/postgresql"). */
  reason: string;
  /** Set when the path holds a database: it needs a database-native backup, not just a snapshot. */
  database?: Database;
  overridden: boolean;
}

interface Rule {
  test: RegExp;
  tier: Tier;
  reason: string;
  database?: Database;
}

// Order matters: the first rule that matches decides.
const RULES: Rule[] = [
  { test: /(^|\/)(tmp|var\/tmp)(\/|$)/, tier: 'temporary', reason: 'temporary files (/tmp)' },
  { test: /(^|\/)swap(file)?(\/|$)|\.swap$/, tier: 'temporary', reason: 'swap' },
  {
    test: /postgres(ql)?|pgsql|\/pg_?data/,
    tier: 'critical',
    reason: 'PostgreSQL database files',
    database: 'postgresql',
  },
  { test: /mysql|mariadb/, tier: 'critical', reason: 'MySQL/MariaDB database files', database: 'mysql' },
  { test: /mongo(db)?/, tier: 'critical', reason: 'MongoDB database files', database: 'mongodb' },
  { test: /(^|\/)redis(\/|$)/, tier: 'critical', reason: 'Redis data', database: 'redis' },
  { test: /(^|\/)(var\/)?log(s)?(\/|$)|journal/, tier: 'standard', reason: 'logs' },
  { test: /(^|\/)(var\/)?cache(\/|$)|\.cache(\/|$)/, tier: 'standard', reason: 'caches' },
  {
    test: /(^|\/)home(\/|$)|(^|\/)root$|(^|\/)Documents(\/|$)/,
    tier: 'critical',
    reason: 'user documents (/home)',
  },
  {
    test: /(^|\/)etc(\/|$)|(^|\/)config(s)?(\/|$)|\.config(\/|$)/,
    tier: 'critical',
    reason: 'system and application configuration',
  },
  {
    test: /(^|\/)(srv|opt|var\/lib|var\/www|data|containers|docker|podman|volumes|apps?)(\/|$)/,
    tier: 'important',
    reason: 'application data',
  },
  { test: /(^|\/)(usr|nix|var)(\/|$)|^\/$/, tier: 'standard', reason: 'system files (reinstallable)' },
];

/** Classifies a volume by its path (docs/planning.md lists the rules); `override` wins. */
export function classifyVolume(path: string, override?: Tier): Classification {
  const rule = RULES.find((candidate) => candidate.test.test(path));
  if (override) {
    return {
      tier: override,
      reason: `set explicitly${rule ? ` (the path suggests ${rule.tier}: ${rule.reason})` : ''}`,
      ...(rule?.database ? { database: rule.database } : {}),
      overridden: true,
    };
  }
  if (!rule)
    return { tier: 'standard', reason: 'no rule matched the path; standard by default', overridden: false };
  return {
    tier: rule.tier,
    reason: rule.reason,
    ...(rule.database ? { database: rule.database } : {}),
    overridden: false,
  };
}
