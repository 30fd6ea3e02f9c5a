import { asyncScheduler, type SchedulerLike } from 'rxjs';
import { listAllTools } from '../client/listTools.js';
import type { McpTx } from '../client/mcpTx.js';
import { classifyRejection } from '../core/classify.js';
import { validationError } from '../core/errors.js';

/** A listing's outcome, when it ended, and the connection it was made on. */
interface Checked {
  readonly at: number;
  readonly on: unknown;
  readonly result: Promise<ReadonlySet<string>>;
}

/**
 * The MCP server's tool names the gateway offers (those of the `allowed` list only, when there is
 * one): listed when first needed, and listed again when a request names a tool not among them and
 * the last listing is older than `relistMs` (by the McpTx's scheduler). One listing at a time: the
 * requests that miss meanwhile share it. A tool it does not offer — not listed, or not allowed — is
 * refused before any call with the same answer, so made-up names reach neither the server nor the
 * health monitor.
 *
 * @example
 * const catalog = new ToolCatalog(tx, 1_000);
 * await catalog.assertListed('get_stock'); // throws MCP_TX_VALIDATION if the server has no such tool
 * const names = await catalog.recent(5_000, connection);
 */
export class ToolCatalog {
  private names: ReadonlySet<string> = new Set();
  private listedAt = Number.NEGATIVE_INFINITY;
  private listing: Promise<ReadonlySet<string>> | undefined;
  private checked: Checked | undefined;
  private readonly clock: SchedulerLike;

  constructor(
    private readonly tx: McpTx,
    private readonly relistMs: number,
    private readonly allowed?: ReadonlySet<string>,
  ) {
    this.clock = tx.config.scheduler ?? asyncScheduler;
  }

  /** Lists the tools again, or joins the listing under way; `on` names the connection it is made on. */
  list(on?: unknown): Promise<ReadonlySet<string>> {
    if (this.listing !== undefined) return this.listing;
    const result = listToolNames(this.tx, this.allowed).then((names) => {
      this.names = names;
      this.listedAt = this.clock.now();
      return names;
    });
    this.listing = result.finally(() => {
      this.listing = undefined;
      this.checked = { at: this.clock.now(), on, result };
    });
    return this.listing;
  }

  /**
   * The outcome of the last listing (the tools, or its failure) if it ended less than `maxAgeMs` ago
   * on the same connection `on`, else a new listing: a flood of health checks asks the server once.
   */
  recent(maxAgeMs: number, on?: unknown): Promise<ReadonlySet<string>> {
    const { checked } = this;
    const fresh = checked !== undefined && checked.on === on && this.clock.now() - checked.at < maxAgeMs;
    return fresh ? checked.result : this.list(on);
  }

  /** Throws `MCP_TX_VALIDATION` (400) when the server does not list `tool` (or it is not allowed), the listing's failure when it fails. */
  async assertListed(tool: string): Promise<void> {
    if (this.names.has(tool)) return;
    if (this.allowed !== undefined && !this.allowed.has(tool)) throw noSuchTool(tool);
    const listedLately = this.clock.now() - this.listedAt < this.relistMs;
    const names = listedLately
      ? this.names
      : await this.list().catch((error: unknown) => {
          throw classifyRejection(error, false);
        });
    if (!names.has(tool)) throw noSuchTool(tool);
  }
}

function noSuchTool(tool: string) {
  return validationError('tool_name', `the MCP server has no tool "${tool}"`);
}

async function listToolNames(
  tx: McpTx,
  allowed: ReadonlySet<string> | undefined,
): Promise<ReadonlySet<string>> {
  const tools = await listAllTools(tx.client, { timeout: tx.config.timeoutMs });
  return new Set(tools.map((tool) => tool.name).filter((name) => allowed?.has(name) ?? true));
}
