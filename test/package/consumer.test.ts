/**
 * mcp-tx as a new user gets it: the packed tarball installed into a fresh project without the
 * optional peers, typechecked strictly (skipLibCheck off) under `nodenext` and `bundler`
 * resolution, run as ESM with a resolve hook that lists every module loaded, and installed from git.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = join(root, 'node_modules/typescript/bin/tsc');
const entries = [
  'mcp-tx',
  'mcp-tx/operators',
  'mcp-tx/testing',
  'mcp-tx/gateway',
  'mcp-tx/redis',
  'mcp-tx/node',
] as const;
/** Modules the root entry and the operators must never load: they belong to other entries or to optional peers. */
const HEAVY = ['hono', '@hono/node-server', 'ioredis', 'commander', 'cli-progress', '@opentelemetry/'];

let dir = '';

async function versionOf(name: string): Promise<string> {
  const manifest = join(root, 'node_modules', name, 'package.json');
  return (JSON.parse(await readFile(manifest, 'utf8')) as { version: string }).version;
}

async function npm(args: string[], cwd = dir) {
  return run('npm', [...args, '--no-audit', '--no-fund'], { cwd, maxBuffer: 16 * 1024 * 1024 });
}

/** Every name the README imports from each entry, as `import { … } from 'mcp-tx…'` lines say. */
async function readmeImports(): Promise<Map<string, Set<string>>> {
  const readme = await readFile(join(root, 'README.md'), 'utf8');
  const names = new Map<string, Set<string>>();
  for (const [, list, entry] of readme.matchAll(/import\s*\{([^}]*)\}\s*from\s*'(mcp-tx[^']*)'/g)) {
    const set = names.get(entry as string) ?? new Set<string>();
    for (const name of (list as string).split(',')) if (name.trim()) set.add(name.trim());
    names.set(entry as string, set);
  }
  return names;
}

/** A file that imports every README name of `wanted` entries and re-exports each entry whole. */
async function consumerSource(wanted: readonly string[]): Promise<string> {
  const imports = await readmeImports();
  const lines = wanted.flatMap((entry, index) => [
    `import { ${[...(imports.get(entry) ?? [])].join(', ')} } from '${entry}';`,
    `export * as entry${index} from '${entry}';`,
  ]);
  return `${lines.join('\n')}\n`;
}

async function typecheck(file: string, resolution: 'nodenext' | 'bundler'): Promise<void> {
  const compilerOptions = {
    strict: true,
    skipLibCheck: false,
    noEmit: true,
    target: 'es2022',
    lib: ['es2023', 'dom'],
    types: ['node'],
    module: resolution === 'nodenext' ? 'nodenext' : 'esnext',
    moduleResolution: resolution,
  };
  const config = join(dir, `tsconfig.${resolution}.${file}.json`);
  await writeFile(config, JSON.stringify({ compilerOptions, files: [file] }));
  await run(process.execPath, [tsc, '-p', config], { cwd: dir }).catch((error: { stdout?: string }) => {
    throw new Error(`tsc (${resolution}) failed on ${file}:\n${error.stdout ?? String(error)}`);
  });
}

const callScript = `
import { createMcpTx, mcpTxClientCapabilities, mcpTxServerCapabilities, memoryIdempotencyStore, txTool } from 'mcp-tx';
import { retryWithPolicy } from 'mcp-tx/operators';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { firstValueFrom } from 'rxjs';
const server = new McpServer({ name: 's', version: '1' }, { capabilities: mcpTxServerCapabilities() });
const store = memoryIdempotencyStore();
server.registerTool('hi', { inputSchema: {} }, txTool(async () => ({ content: [{ type: 'text', text: '"hello"' }] }), { tool: 'hi', store }));
const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
await server.connect(serverSide);
const client = new Client({ name: 'c', version: '1' }, { capabilities: mcpTxClientCapabilities() });
await client.connect(clientSide);
const tx = createMcpTx(client);
const first = await tx.call('hi', {}, { idempotencyKey: 'k' });
const again = await firstValueFrom(tx.attempt$('hi', {}, { idempotencyKey: 'k' }).pipe(retryWithPolicy()));
console.log(JSON.stringify({ data: first.data, duplicate: again.meta.duplicate }));
await tx.close();
`;

const hooks = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(process.env.MCP_TX_LOADED, resolved.url + '\\n');
  return resolved;
}
`;

describe('the published package, as a new user installs it', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcp-tx-consumer-'));
    const { stdout } = await run('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: root });
    const tarball = join(dir, stdout.trim().split('\n').at(-1) as string);
    await writeFile(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    const peers = [`@modelcontextprotocol/sdk@${await versionOf('@modelcontextprotocol/sdk')}`, 'rxjs@7'];
    await npm(['install', tarball, ...peers, `@types/node@${await versionOf('@types/node')}`]);
  }, 180_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('ships the build, its types, README, LICENSE and CHANGELOG, and no source maps', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json'], { cwd: root });
    const [{ files }] = JSON.parse(stdout) as [{ files: Array<{ path: string }> }];
    const paths = files.map((file) => file.path);
    expect(paths).toEqual(
      expect.arrayContaining(['README.md', 'LICENSE', 'CHANGELOG.md', 'dist/src/index.js']),
    );
    expect(paths).toEqual(expect.arrayContaining(['dist/src/index.d.ts', 'dist/src/redis.d.ts']));
    expect(paths.filter((path) => path.endsWith('.map'))).toEqual([]);
  }, 60_000);

  it('typechecks every README name of mcp-tx, /operators, /testing, /gateway and /node without the optional peers', async () => {
    await writeFile(
      join(dir, 'core.ts'),
      await consumerSource(entries.filter((entry) => entry !== 'mcp-tx/redis')),
    );
    await typecheck('core.ts', 'nodenext');
    await typecheck('core.ts', 'bundler');
  }, 180_000);

  it('runs a call as ESM, loading none of hono, ioredis, commander, cli-progress or OpenTelemetry', async () => {
    await writeFile(join(dir, 'call.mjs'), callScript);
    await writeFile(join(dir, 'hooks.mjs'), hooks);
    await writeFile(
      join(dir, 'register.mjs'),
      "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n",
    );
    const log = join(dir, 'loaded.txt');
    const { stdout } = await run(process.execPath, ['--import', './register.mjs', 'call.mjs'], {
      cwd: dir,
      env: { ...process.env, MCP_TX_LOADED: log },
    });
    expect(JSON.parse(stdout.trim())).toEqual({ data: 'hello', duplicate: true });
    const loaded = (await readFile(log, 'utf8')).split('\n').filter(Boolean);
    expect(loaded.some((url) => url.includes('/node_modules/mcp-tx/dist/src/index.js'))).toBe(true);
    for (const heavy of HEAVY)
      expect(loaded.filter((url) => url.includes(`/node_modules/${heavy}`))).toEqual([]);
  }, 120_000);

  it('typechecks mcp-tx/redis once ioredis is installed', async () => {
    await npm(['install', `ioredis@${await versionOf('ioredis')}`]);
    await writeFile(join(dir, 'redis.ts'), await consumerSource(['mcp-tx/redis']));
    await typecheck('redis.ts', 'nodenext');
    await typecheck('redis.ts', 'bundler');
  }, 240_000);

  it('runs its bin: --help, and the demo from the compiled package', async () => {
    const bin = join(dir, 'node_modules/.bin/mcp-tx');
    expect((await run(bin, ['--help'], { cwd: dir })).stdout).toContain('batch');
    expect((await run(bin, ['demo'], { cwd: dir })).stdout).toContain('each order exactly once');
  }, 120_000);
});

describe('mcp-tx installed from git', () => {
  let gitDir = '';
  afterAll(async () => {
    if (gitDir) await rm(gitDir, { recursive: true, force: true });
  });

  it('builds on install (prepare): import works and npx mcp-tx --help answers', async () => {
    gitDir = await mkdtemp(join(tmpdir(), 'mcp-tx-git-'));
    await writeFile(
      join(gitDir, 'package.json'),
      JSON.stringify({ name: 'git-consumer', private: true, type: 'module' }),
    );
    const peers = [`@modelcontextprotocol/sdk@${await versionOf('@modelcontextprotocol/sdk')}`, 'rxjs@7'];
    await npm(['install', `git+file://${root}`, ...peers], gitDir);
    const script =
      "import { createMcpTx, TxErrorCode } from 'mcp-tx';\nconsole.log(typeof createMcpTx, TxErrorCode.Timeout);\n";
    await writeFile(join(gitDir, 'import.mjs'), script);
    expect((await run(process.execPath, ['import.mjs'], { cwd: gitDir })).stdout.trim()).toBe(
      'function MCP_TX_TIMEOUT',
    );
    expect((await run('npx', ['--no-install', 'mcp-tx', '--help'], { cwd: gitDir })).stdout).toContain(
      'batch',
    );
  }, 300_000);
});
