// Regenerates context/backup-history.schema.json from the zod schema (run: npm run gen:schema).
import { writeFileSync } from 'node:fs';
import { historyJsonSchema } from '../dist/core/history/schema.js';

const target = new URL('../context/backup-history.schema.json', import.meta.url);
writeFileSync(target, `${JSON.stringify(historyJsonSchema(), null, 2)}\n`);
process.stdout.write(`wrote ${target.pathname}\n`);
