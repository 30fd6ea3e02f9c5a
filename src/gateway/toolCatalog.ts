import { asyncScheduler, type SchedulerLike } from 'rxjs';
import { listAllTools } from '../client/listTools.js';
import type { McpTx } from '../client/mcpTx.js';
import { classifyRejection } from '../core/classify.js';
import { validationError } from '../core/errors.js';

/**
 * The MCP server's tool names: listed when first needed, and listed again when a request names a
 * tool not among them and the last listing is older than `relistMs` (by the McpTx's scheduler). One
 * listing at a time: the requests that miss meanwhile share it. A tool it does not list is refused
 * before any call, so made-up names reach neither the server nor the health monitor.
 *
 * @example
 * const catalog = new ToolCatalog(tx, 1_000);
 * await catalog.assertListed('get_stock'); // throws MCP_TX_VALIDATION if the server has no such tool
 * const names = await catalog.list();
 */
export class ToolCatalog {
  private names: ReadonlySet<string> = new Set();
  private listedAt = Number.NEGATIVE_INFINITY;
  private listing: Promise<ReadonlySet<string>> | undefined;
  private readonly clock: SchedulerLike;

  constructor(
    private readonly tx: McpTx,
    private readonly relistMs: number,
  ) {
    this.clock = tx.config.scheduler ?? asyncScheduler;
  }

  /** Lists the tools again, or joins the listing under way. */
  list(): Promise<ReadonlySet<string>> {
    this.listing ??= listToolNames(this.tx)
      .then((names) => {
        this.names = names;
        this.listedAt = this.clock.now();
        return names;
      })
      .finally(() => {
        this.listing = undefined;
      });
    return this.listing;
  }

  /** Throws `MCP_TX_VALIDATION` (400) when the server does not list `tool`, the listing's failure when it fails. */
  async assertListed(tool: string): Promise<void> {
    if (this.names.has(tool)) return;
    const listedLately = this.clock.now() - this.listedAt < this.relistMs;
    const names = listedLately
      ? this.names
      : await this.list().catch((error: unknown) => {
          throw classifyRejection(error, false);
        });
    if (!names.has(tool)) throw validationError('tool_name', `the MCP server has no tool "${tool}"`);
  }
}

async function listToolNames(tx: McpTx): Promise<ReadonlySet<string>> {
  const tools = await listAllTools(tx.client, { timeout: tx.config.timeoutMs });
  return new Set(tools.map((tool) => tool.name));
}
