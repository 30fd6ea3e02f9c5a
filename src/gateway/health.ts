import type { McpTx } from '../client/mcpTx.js';
import type { ConnectionState, ConnectionStatus } from '../connection/connectionState.js';
import { isoTime } from '../core/time.js';
import type { HealthMonitor, HealthReport } from '../health/healthMonitor.js';
import type { ToolCatalog } from './toolCatalog.js';

/**
 * What `GET /health` answers: 200, or 503 when `status` is `reconnecting` or `unavailable`.
 *
 * @example
 * const health = (await (await fetch(`${url}/health`)).json()) as GatewayHealth;
 * console.log(health.status, health.tools?.length, health.active_requests, health.connection?.state);
 */
export interface GatewayHealth {
  /**
   * `ok`; `degraded` when the health monitor alerts; `reconnecting` (503) while the McpTx is making
   * its connection to the MCP server (again); `unavailable` (503) when the MCP server does not
   * answer or the McpTx's connection is closed.
   */
  readonly status: 'ok' | 'degraded' | 'reconnecting' | 'unavailable';
  readonly server_supports_tx: boolean;
  /**
   * The names of the tools the gateway offers (the MCP server's `tools/list`, every page, kept for
   * `healthToolsTtlMs`; only the allowed ones with a `tools` allow list); empty when the server is
   * not connected or does not answer. Only shown to callers who passed `auth`, or to anyone with
   * `exposeTools: true`; absent otherwise.
   */
  readonly tools?: readonly string[];
  readonly active_requests: number;
  /**
   * The McpTx's connection (`tx.connection$`): its state, the attempt it is on while connecting or
   * reconnecting (0 once connected), since when (ISO 8601, the McpTx's clock), and while not
   * connected the code of the error that ended the last connection or attempt.
   */
  readonly connection: GatewayConnection | null;
  readonly health: HealthReport | null;
}

/**
 * The McpTx's connection as `GET /health` shows it.
 *
 * @example
 * if (health.connection?.state === 'reconnecting') console.warn(`attempt ${health.connection.attempt}`);
 */
export interface GatewayConnection {
  readonly state: ConnectionStatus;
  readonly attempt: number;
  readonly since: string;
  readonly error_code?: string;
}

/**
 * How `GET /health` shows the tools: the last listing is reused for `toolsTtlMs` (on the same
 * connection), and the names are shown only when `showTools`.
 *
 * @example
 * const view: HealthView = { toolsTtlMs: 5_000, showTools: settings.auth !== undefined };
 */
export interface HealthView {
  readonly toolsTtlMs: number;
  readonly showTools: boolean;
}

/**
 * The gateway's health: where the McpTx's connection stands, the MCP server's tools (listed again
 * once the last listing on this connection is older than `toolsTtlMs`, only while connected: a
 * server being reconnected to is not asked), whether it speaks MCP-Tx, the calls in flight and
 * `monitor`'s report.
 *
 * @example
 * const health = await gatewayHealth(tx, catalog, tx.config.monitor, { toolsTtlMs: 5_000, showTools: true });
 * return c.json(health, healthStatusCode(health));
 */
export async function gatewayHealth(
  tx: McpTx,
  catalog: ToolCatalog,
  monitor: HealthMonitor | undefined,
  { toolsTtlMs, showTools }: HealthView,
): Promise<GatewayHealth> {
  const report = monitor?.report() ?? null;
  const connection = currentConnection(tx);
  const down = connectionDown(connection?.state);
  const tools =
    down === undefined ? await catalog.recent(toolsTtlMs, connection).catch(() => undefined) : undefined;
  return {
    status: down ?? (tools === undefined ? 'unavailable' : report?.healthy === false ? 'degraded' : 'ok'),
    server_supports_tx: tx.serverSupportsTx,
    ...(showTools ? { tools: tools === undefined ? [] : [...tools] } : {}),
    active_requests: tx.activeRequests.size,
    connection: connection === undefined ? null : describe(connection),
    health: report,
  };
}

/** The HTTP status of a health answer: 503 while the MCP server cannot be called. */
export function healthStatusCode(health: GatewayHealth): 200 | 503 {
  return health.status === 'reconnecting' || health.status === 'unavailable' ? 503 : 200;
}

/** What a state that is not `connected` makes the health: `reconnecting` or `unavailable`. */
function connectionDown(state: ConnectionStatus | undefined): GatewayHealth['status'] | undefined {
  if (state === 'connecting' || state === 'reconnecting') return 'reconnecting';
  if (state === 'closed') return 'unavailable';
  return undefined;
}

/** The value `tx.connection$` replays now, if it has one (it always does; an McpTx-like stub may not). */
function currentConnection(tx: McpTx): ConnectionState | undefined {
  let current: ConnectionState | undefined;
  const connection$ = (tx as Partial<McpTx>).connection$;
  connection$
    ?.subscribe((value) => {
      current = value;
    })
    .unsubscribe();
  return current;
}

function describe({ state, attempt, since, error }: ConnectionState): GatewayConnection {
  return {
    state,
    attempt,
    since: isoTime(since),
    ...(state === 'connected' || error === undefined ? {} : { error_code: error.code }),
  };
}
