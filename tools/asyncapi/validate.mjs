// Validates an AsyncAPI document with the official parser (@asyncapi/parser, pinned in
// package-lock.json). Prints every diagnostic; exits 1 if any has error severity.
//   node tools/asyncapi/validate.mjs services/contracts/wbs_contracts/asyncapi.json
import { readFileSync } from 'node:fs';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const file = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(file, 'utf8'), { source: file });
const names = ['error', 'warning', 'information', 'hint'];
for (const d of diagnostics) {
  console.log(`${names[d.severity]} ${d.code} ${d.path.join('/')}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error).length;
if (!document || errors) {
  console.log(`INVALID: ${errors} error(s)`);
  process.exit(1);
}
console.log(`valid AsyncAPI ${document.version()}: ${document.channels().length} channels, ` +
  `${document.operations().length} operations, ${document.components().messages().length} messages; ` +
  `${diagnostics.length} diagnostic(s), 0 errors`);
