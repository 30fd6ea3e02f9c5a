/**
 * The README's TypeScript cannot rot: every ```ts block is marked as an excerpt of an example file
 * (`<!-- excerpt: examples/….ts -->` on the line before it), and its lines stand, in order, in that
 * file — which `npm run typecheck` compiles and `test/e2e/examples.test.ts` runs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('../../../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');

interface Block {
  readonly line: number;
  readonly source?: string;
  readonly code: readonly string[];
}

/** The ```ts blocks of a Markdown text, each with the example file its marker names. */
function typescriptBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let index = 0; index < lines.length; index++) {
    if (lines[index]?.trim() !== '```ts') continue;
    const marker = /<!--\s*excerpt:\s*(\S+)\s*-->/.exec(lines[index - 1] ?? '');
    const end = lines.indexOf('```', index + 1);
    blocks.push({ line: index + 1, source: marker?.[1], code: lines.slice(index + 1, end) });
    index = end;
  }
  return blocks;
}

/** Lines that carry code: not blank, not an elision (`// …`, `...`). */
const significant = (lines: readonly string[]) =>
  lines.map((line) => line.trim()).filter((line) => line !== '' && !/^(\/\/\s*)?(…|\.\.\.)$/.test(line));

/** The first line of `excerpt` not found, in order, in `file`; undefined when all are. */
function firstMissing(excerpt: readonly string[], file: readonly string[]): string | undefined {
  let at = 0;
  for (const line of excerpt) {
    const found = file.indexOf(line, at);
    if (found === -1) return line;
    at = found + 1;
  }
  return undefined;
}

describe('README TypeScript blocks', () => {
  const blocks = typescriptBlocks(readme);

  it('has blocks, each marked with the example file it is taken from', () => {
    expect(blocks.length).toBeGreaterThan(5);
    for (const block of blocks) {
      expect(block.source, `README line ${block.line}: no <!-- excerpt: examples/….ts --> marker`).toMatch(
        /^examples\/.+\.ts$/,
      );
      expect(existsSync(new URL(block.source as string, root)), `README line ${block.line}`).toBe(true);
    }
  });

  it.each(blocks.map((block) => [block.line, block] as const))(
    'block at line %i stands in its example',
    (_, block) => {
      const file = significant(readFileSync(new URL(block.source as string, root), 'utf8').split('\n'));
      expect(
        firstMissing(significant(block.code), file),
        `README line ${block.line} vs ${block.source}`,
      ).toBeUndefined();
    },
  );

  it('imports mcp-tx by its package name, never from a source path', () => {
    for (const block of blocks) {
      for (const line of block.code) expect(line).not.toMatch(/from '\.{1,2}\/(src|operators)/);
    }
  });
});
