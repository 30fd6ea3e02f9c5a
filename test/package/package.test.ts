import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
let dir = '';
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const consumer = `
import { createMcpTx, mcpTxClientCapabilities, mcpTxServerCapabilities } from 'mcp-tx';
import { retryWithPolicy } from 'mcp-tx/operators';
import { faultyTransport } from 'mcp-tx/testing';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { firstValueFrom } from 'rxjs';
const server = new McpServer({ name: 's', version: '1' }, { capabilities: mcpTxServerCapabilities() });
server.registerTool('hi', {}, async () => ({ content: [{ type: 'text', text: '"hello"' }] }));
const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
await server.connect(serverSide);
const client = new Client({ name: 'c', version: '1' }, { capabilities: mcpTxClientCapabilities() });
await client.connect(faultyTransport(clientSide));
const tx = createMcpTx(client);
const { data, meta } = await firstValueFrom(tx.attempt$('hi').pipe(retryWithPolicy()));
console.log(JSON.stringify({ data, attempts: meta.attempts, serverSupportsTx: meta.serverSupportsTx }));
await tx.close();
`;

describe('the published package', () => {
  it('installs from its tarball, runs a call through mcp-tx, mcp-tx/operators and mcp-tx/testing, and its bin', async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcp-tx-package-'));
    const { stdout: packed } = await run('npm', ['pack', '--silent', '--pack-destination', dir], {
      cwd: root,
    });
    const tarball = join(dir, packed.trim().split('\n').at(-1) as string);
    await writeFile(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    const sdkManifest = join(root, 'node_modules/@modelcontextprotocol/sdk/package.json');
    const sdk = (JSON.parse(await readFile(sdkManifest, 'utf8')) as { version: string }).version;
    await run(
      'npm',
      ['install', '--no-audit', '--no-fund', tarball, `@modelcontextprotocol/sdk@${sdk}`, 'rxjs@7'],
      {
        cwd: dir,
      },
    );
    await writeFile(join(dir, 'consumer.mjs'), consumer);
    const { stdout } = await run(process.execPath, ['consumer.mjs'], { cwd: dir });
    expect(JSON.parse(stdout.trim())).toEqual({ data: 'hello', attempts: 1, serverSupportsTx: true });

    // The bin, run from the compiled package: the demo starts its bundled server from dist/.
    const demo = await run(join(dir, 'node_modules/.bin/mcp-tx'), ['demo'], { cwd: dir });
    expect(demo.stdout).toContain('each order exactly once');
  }, 180_000);
});
