import { HealthMonitor } from 'mcp-tx';
import {
  createGateway,
  type ExecuteToolResponse,
  type GatewayHealth,
  type ProblemDetails,
  serveGateway,
} from 'mcp-tx/gateway';
import { openShop } from './demo-server.js';

/**
 * The HTTP gateway in front of the demo shop: an order placed with an `Idempotency-Key` and replayed
 * (created once), the key reused for another order (422), a bad body (400), then `GET /health`.
 */
export async function main(log: (line: string) => void = console.log) {
  const health = new HealthMonitor();
  const { shop, tx, close } = await openShop({ monitor: health });
  const gateway = await serveGateway(createGateway(tx, { bodyLimit: 64 * 1024 }));
  log(`gateway on ${gateway.url}`);

  const send = async (body: unknown, idempotencyKey?: string) => {
    const response = await fetch(new URL('/execute-tool', gateway.url), {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        ...(idempotencyKey === undefined ? {} : { 'Idempotency-Key': `"${idempotencyKey}"` }),
      },
      body: JSON.stringify(body),
    });
    const answer = (await response.json()) as ExecuteToolResponse | ProblemDetails;
    log(`${response.status} ${JSON.stringify(answer)}`);
    return { status: response.status, answer };
  };

  const order = { tool_name: 'create_order', arguments: { item: 'apple', quantity: 2 } };
  const placed = await send(order, 'order-1001');
  const replayed = await send(order, 'order-1001');
  const reused = await send({ ...order, arguments: { item: 'pear', quantity: 1 } }, 'order-1001');
  const invalid = await send({ arguments: {} });
  const checkup = (await (await fetch(new URL('/health', gateway.url))).json()) as GatewayHealth;
  log(
    `health: ${checkup.status}, ${checkup.tools.length} tools, MCP-Tx: ${checkup.server_supports_tx}, ` +
      `${checkup.health?.totals.calls} calls monitored`,
  );

  await gateway.close();
  await close();
  return {
    statuses: [placed.status, replayed.status, reused.status, invalid.status],
    duplicate: replayed.answer.metadata?.duplicate,
    ordersCreated: shop.ordersCreated(),
  };
}
