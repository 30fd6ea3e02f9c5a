import { concatMap, delay, from, lastValueFrom, map, of, switchMap, toArray } from 'rxjs';
import { openShop } from './demo-server.js';

/** Search-as-you-type: switchMap cancels the stale searches on the wire; only the last answer shows. */
export async function main(log: (line: string) => void = console.log) {
  const { shop, tx, close } = await openShop();
  const keystrokes = from(['a', 'ap', 'app', 'p']).pipe(concatMap((q) => of(q).pipe(delay(5))));
  const shown = await lastValueFrom(
    keystrokes.pipe(
      switchMap((q) => tx.call$('search', { q }).pipe(map(({ data }) => ({ q, data })))),
      toArray(),
    ),
  );
  for (const { q, data } of shown) log(`results for "${q}": ${JSON.stringify(data)}`);
  log(`stale searches cancelled on the server: ${shop.cancelledSearches()}`);
  await close();
  return { shown: shown.map(({ q }) => q), cancelled: shop.cancelledSearches() };
}
