import type { IdempotencyStore } from '../../src/idempotency/store.js';

/** `store` whose `begin` is only asked, and answers, when `answer()` is called (a slow store). */
export function answeringLater(store: IdempotencyStore) {
  const asked: Array<() => void> = [];
  const slow: IdempotencyStore = {
    ...store,
    begin: (key, print, ttlMs) =>
      new Promise((resolve) => asked.push(() => resolve(store.begin(key, print, ttlMs)))),
  };
  const answer = () => {
    for (const ask of asked.splice(0)) ask();
  };
  return { store: slow, answer };
}
