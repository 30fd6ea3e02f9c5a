import { randomUUID } from 'node:crypto';
import { createMcpTx, HealthMonitor } from 'mcp-tx';
import type { ExecuteToolResponse, GatewayHealth, ProblemDetails } from 'mcp-tx/gateway';
import { bearerAuth, createGateway, serveGateway } from 'mcp-tx/gateway';
import { connectInProcess, createDemoShop } from './demo-server.js';

/**
 * The HTTP gateway in front of the demo shop: an order placed with an `Idempotency-Key` and replayed
 * (created once), the key reused for another order (422), a bad body (400), a request without the
 * token (401), then `GET /health`. The gateway takes a bearer token and offers two of the shop's tools.
 */
export async function main(log: (line: string) => void = console.log) {
  const shop = createDemoShop();
  const client = await connectInProcess(shop.server);

  const token = process.env.GATEWAY_TOKEN ?? randomUUID(); // unset or short: bearerAuth throws
  const health = new HealthMonitor();
  const tx = createMcpTx(client, { monitor: health });
  const app = createGateway(tx, {
    auth: bearerAuth({ tokens: [token] }), // constant-time; 401 without `Authorization: Bearer <token>`
    tools: ['get_stock', 'create_order'], // the others are refused like unknown tools
    bodyLimit: 256 * 1024,
  });
  // 127.0.0.1 and a spare port; { port: 8080, hostname: '0.0.0.0' } listens on every interface
  // (allowed because the gateway has auth: without it, serveGateway refuses to start)
  const gateway = await serveGateway(app);
  const shutdown = async () => {
    await gateway.close(); // stops accepting; the requests in flight finish (10 s at most)
    await tx.close();
  };
  process.once('SIGTERM', shutdown);
  log(`gateway on ${gateway.url}`);

  const authorized = { Authorization: `Bearer ${token}` };
  const send = async (
    body: unknown,
    idempotencyKey?: string,
    headers: Record<string, string> = authorized,
  ) => {
    const response = await fetch(new URL('/execute-tool', gateway.url), {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        ...headers,
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
  const anonymous = await send(order, 'order-1002', {});
  const checkup = (await (
    await fetch(new URL('/health', gateway.url), { headers: authorized })
  ).json()) as GatewayHealth;
  log(
    `health: ${checkup.status}, ${checkup.tools?.length} tools, MCP-Tx: ${checkup.server_supports_tx}, ` +
      `${checkup.health?.totals.calls} calls monitored`,
  );

  process.off('SIGTERM', shutdown);
  await shutdown();
  await shop.server.close();
  return {
    statuses: [placed.status, replayed.status, reused.status, invalid.status, anonymous.status],
    duplicate: replayed.answer.metadata?.duplicate,
    ordersCreated: shop.ordersCreated(),
  };
}
