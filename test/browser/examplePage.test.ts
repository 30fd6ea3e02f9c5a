/**
 * The browser example (examples/browser) in headless Chromium, against its MCP server in a child
 * process: type-ahead cancels stale calls on the server and shows only the last answer; a burst of
 * 200 keyed calls runs each effect once; the server killed and restarted mid-burst opens the
 * breaker, the page shows it, and the calls resume. Screenshots: .tmp/browser/example-page*.png.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { build, type PreviewServer, preview } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = new URL('../..', import.meta.url).pathname;
const CONFIG = join(ROOT, 'examples/browser/vite.config.ts');
const SCREENSHOT = join(ROOT, '.tmp/browser/example-page.png');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

interface ServerStats {
  started: string[];
  cancelled: string[];
  answered: string[];
  effects: Record<string, number>;
}

let port = 0;
let server: ChildProcess | undefined;
let site: PreviewServer | undefined;
let context: BrowserContext | undefined;
let page: Page;
let scratch = '';
const pageErrors: string[] = [];

async function sparePort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port: free } = probe.address() as { port: number };
  probe.close();
  return free;
}

/** Starts the example's MCP server on `port` and waits until it listens. */
async function startServer(): Promise<void> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=mcp-tx-source', join(ROOT, 'examples/browser/server.ts')],
    { cwd: ROOT, env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  server = child;
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the example server exited (${code})`)));
    child.stdout?.on('data', (chunk: Buffer) => chunk.toString().includes('MCP server on') && resolve());
  });
}

async function killServer(): Promise<void> {
  const child = server;
  if (child === undefined || child.exitCode !== null) return;
  child.removeAllListeners('exit');
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

async function stats(): Promise<ServerStats> {
  return (await fetch(`http://127.0.0.1:${port}/stats`)).json() as Promise<ServerStats>;
}

const text = async (id: string) => (await page.locator(`#${id}`).textContent())?.trim() ?? '';
const burstRun = async () => (await text('burst-status')).match(/\(run (\S+)\)/)?.[1] as string;

beforeAll(async () => {
  port = await sparePort();
  scratch = await mkdtemp(join(tmpdir(), 'mcp-tx-browser-'));
  const outDir = join(scratch, 'site');
  await startServer();
  await build({ configFile: CONFIG, logLevel: 'error', build: { outDir, emptyOutDir: true } });
  site = await preview({
    configFile: CONFIG,
    logLevel: 'error',
    build: { outDir },
    preview: { host: '127.0.0.1', port: 0, strictPort: false },
  });
  context = await chromium.launchPersistentContext(join(scratch, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  const pageUrl = site.resolvedUrls?.local[0] as string;
  await page.goto(`${pageUrl}?mcp=${encodeURIComponent(`http://127.0.0.1:${port}/mcp`)}`);
}, 90_000);

afterAll(async () => {
  await context?.close();
  await site?.close();
  await killServer();
  if (scratch) await rm(scratch, { recursive: true, force: true });
}, 30_000);

describe('the browser example in headless Chromium', () => {
  it('connects to the MCP server over Streamable HTTP (CORS, Mcp-Session-Id exposed)', async () => {
    await expect.poll(() => text('connection'), { timeout: 15_000 }).toBe('connected');
    expect(pageErrors).toEqual([]);
  });

  it('type-ahead: each keystroke cancels the stale call on the server; only the last answer shows', async () => {
    await page.locator('#q').pressSequentially('retr', { delay: 40 });
    await expect.poll(() => text('answer'), { timeout: 10_000 }).toBe('retr: retry');
    // every stale search that reached the server was cancelled there (one cancelled before it was sent never gets there)
    const stale = async () => {
      const { started, cancelled } = await stats();
      return { started: started.filter((q) => q !== 'retr').sort(), cancelled: cancelled.sort() };
    };
    await expect
      .poll(async () => (await stale()).cancelled, { timeout: 5_000 })
      .toEqual((await stale()).started);
    expect((await stale()).cancelled.length).toBeGreaterThanOrEqual(2);
    expect((await stats()).answered).toEqual(['retr']);
    expect(await text('answers-shown')).toBe('1');
    expect(await text('searches-sent')).toBe('4');
  });

  it('a burst of 200 keyed calls through throttle completes, each effect once', async () => {
    await page.locator('#burst').click();
    await expect.poll(() => text('burst-status'), { timeout: 20_000 }).toMatch(/^done/);
    expect(await text('progress')).toBe('200 / 200');
    const run = await burstRun();
    const effects = Object.entries((await stats()).effects).filter(([key]) =>
      key.startsWith(`burst-${run}-`),
    );
    expect(effects).toHaveLength(200);
    expect(effects.filter(([, count]) => count !== 1)).toEqual([]);
  });

  it('the server killed and restarted mid-burst: the breaker opens, the page shows it, the calls resume', async () => {
    await page.locator('#burst').click();
    await expect
      .poll(async () => Number((await text('progress')).split(' ')[0]), { timeout: 10_000 })
      .toBeGreaterThan(40);
    await killServer();
    await expect.poll(() => text('breaker'), { timeout: 10_000 }).toBe('open');
    await mkdir(join(ROOT, '.tmp/browser'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT.replace('.png', '-breaker-open.png'), fullPage: true });
    const stalled = Number((await text('progress')).split(' ')[0]);
    expect(stalled).toBeLessThan(200);
    await startServer();
    await expect.poll(() => text('burst-status'), { timeout: 30_000 }).toMatch(/^done/);
    expect(await text('progress')).toBe('200 / 200');
    expect(await text('breaker')).toBe('closed');
    // Opened by the crash, closed by a probe; a probe sent before the restarted server answers
    // (a loaded machine) opens it again, and only through half-open may it close.
    expect(await text('breaker-history')).toMatch(
      /^closed → open → half-open( → open → half-open)* → closed$/,
    );
    // the restarted server ran the calls the page had not seen answered
    const run = await burstRun();
    const rerun = Object.keys((await stats()).effects).filter((key) => key.startsWith(`burst-${run}-`));
    expect(rerun.length).toBeGreaterThanOrEqual(200 - stalled);
    await page.locator('#q').fill('');
    await page.locator('#q').pressSequentially('rx', { delay: 40 });
    await expect.poll(() => text('answer'), { timeout: 10_000 }).toBe('rx: rx, rxjs');
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });
});
