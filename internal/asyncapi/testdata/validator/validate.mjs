// validate.mjs checks an AsyncAPI document with the official parser.
//
//   node validate.mjs FILE
//
// It prints every diagnostic as "severity path: message (code)" and exits
// 1 if any has severity error (0), 2 on a usage or read error, 0 otherwise.
import { readFile } from 'node:fs/promises';
import { Parser } from '@asyncapi/parser';

const severities = ['error', 'warning', 'info', 'hint'];

const file = process.argv[2];
if (!file) {
  console.error('usage: node validate.mjs FILE');
  process.exit(2);
}

let text;
try {
  text = await readFile(file, 'utf8');
} catch (err) {
  console.error(`validate.mjs: ${err.message}`);
  process.exit(2);
}

const parser = new Parser();
const diagnostics = await parser.validate(text, { source: file });

let errors = 0;
for (const d of diagnostics) {
  if (d.severity === 0) errors++;
  const sev = severities[d.severity] ?? `severity ${d.severity}`;
  const where = (d.path ?? []).join('.') || '(root)';
  console.log(`${sev} ${where}: ${d.message} (${d.code})`);
}
console.log(`${file}: ${diagnostics.length} diagnostic(s), ${errors} error(s)`);
process.exit(errors > 0 ? 1 : 0);
