import type { McpTx } from '../client/mcpTx.js';
import type { HealthMonitor, HealthReport } from '../health/healthMonitor.js';
import type { ToolCatalog } from './toolCatalog.js';

/**
 * What `GET /health` answers (200, or 503 when `status` is `unavailable`).
 *
 * @example
 * const health = (await (await fetch(`${url}/health`)).json()) as GatewayHealth;
 * console.log(health.status, health.tools.length, health.active_requests);
 */
export interface GatewayHealth {
  /** `ok`; `degraded` when the health monitor alerts; `unavailable` (503) when the MCP server does not answer. */
  readonly status: 'ok' | 'degraded' | 'unavailable';
  readonly server_supports_tx: boolean;
  /** The MCP server's tools (`tools/list`, every page). */
  readonly tools: readonly string[];
  readonly active_requests: number;
  readonly health: HealthReport | null;
}

/**
 * The gateway's health: the MCP server's tools (listed again), whether it speaks MCP-Tx, the calls
 * in flight and `monitor`'s report.
 *
 * @example
 * const health = await gatewayHealth(tx, catalog, tx.config.monitor);
 * return c.json(health, health.status === 'unavailable' ? 503 : 200);
 */
export async function gatewayHealth(
  tx: McpTx,
  catalog: ToolCatalog,
  monitor: HealthMonitor | undefined,
): Promise<GatewayHealth> {
  const report = monitor?.report() ?? null;
  const tools = await catalog.list().catch(() => undefined);
  const status = tools === undefined ? 'unavailable' : report?.healthy === false ? 'degraded' : 'ok';
  return {
    status,
    server_supports_tx: tx.serverSupportsTx,
    tools: tools === undefined ? [] : [...tools],
    active_requests: tx.activeRequests.size,
    health: report,
  };
}
