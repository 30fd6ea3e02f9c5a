/**
 * `@opentelemetry/api`, an optional peer, loaded only when tracing is asked for: importing mcp-tx
 * never loads it. The specifier is a variable so that bundlers leave the import alone for apps
 * without OpenTelemetry.
 */
import type * as OtelApiModule from '@opentelemetry/api';

/** The `@opentelemetry/api` module. */
export type OtelApi = typeof OtelApiModule;

const OTEL_API: string = '@opentelemetry/api';

/** Where the load stands: not begun, on its way, or done (`api` undefined when the package is missing). */
let loading: Promise<OtelApi | undefined> | undefined;
let loaded: { readonly api: OtelApi | undefined } | undefined;

/**
 * Starts loading `@opentelemetry/api` (once per process) and resolves with it, or with `undefined`
 * when it is not installed — then warns once (`MCP_TX_NO_OTEL`) naming the package to install.
 */
export function loadOtelApi(): Promise<OtelApi | undefined> {
  loading ??= (import(/* @vite-ignore */ OTEL_API) as Promise<OtelApi>).then(
    (api) => {
      loaded = { api };
      return api;
    },
    () => {
      loaded = { api: undefined };
      warnNoOtel();
      return undefined;
    },
  );
  return loading;
}

/** The load's outcome once it is known (see {@link loadOtelApi}); `undefined` while it is not. */
export function loadedOtelApi(): { readonly api: OtelApi | undefined } | undefined {
  return loaded;
}

function warnNoOtel(): void {
  globalThis.process?.emitWarning?.(
    'mcp-tx: trace is on, but @opentelemetry/api is not installed, so no spans are made; ' +
      'install it (npm i @opentelemetry/api) and register an OpenTelemetry SDK',
    { code: 'MCP_TX_NO_OTEL' },
  );
}
