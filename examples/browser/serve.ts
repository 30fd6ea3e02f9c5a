/**
 * `npm run example:browser`: the example's MCP server on 127.0.0.1:3001 and the page on Vite's dev
 * server (http://localhost:5173). Type in the search box, fire the burst, stop and start the server.
 */
import { createServer } from 'vite';
import './server.js';

const page = await createServer({ configFile: new URL('./vite.config.ts', import.meta.url).pathname });
await page.listen();
page.printUrls();
