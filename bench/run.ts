/**
 * `npm run bench`: runs every benchmark in its own process, one after another, then joins their
 * tables into bench/results.md.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

const here = new URL('.', import.meta.url);
const benches = readdirSync(here).filter((file) => file.endsWith('.bench.ts'));
for (const bench of benches) {
  console.log(`\n== ${bench}`);
  execFileSync(process.execPath, ['--import', 'tsx', new URL(bench, here).pathname], { stdio: 'inherit' });
}
const sections = benches.map((bench) => {
  const name = bench.replace('.bench.ts', '');
  return `## ${name}\n\n${readFileSync(new URL(`results/${name}.md`, here), 'utf8')}`;
});
writeFileSync(
  new URL('results.md', here),
  `# Benchmark results\n\nReproduce with \`npm run bench\`.\n\n${sections.join('\n')}`,
);
