import type { VirtualTimeScheduler } from 'rxjs';

const macrotask = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Moves `scheduler` forward by `ms` of virtual time, running what falls due and letting promise
 * callbacks (a store's answers, the SDK's responses) run between steps, so that actions they
 * schedule within the window run too.
 */
export async function advanceVirtual(scheduler: VirtualTimeScheduler, ms: number): Promise<void> {
  const target = scheduler.frame + ms;
  for (;;) {
    await macrotask();
    const due = scheduler.actions.some((action) => (action.delay ?? 0) <= target);
    if (!due) break;
    scheduler.maxFrames = target;
    scheduler.flush();
  }
  scheduler.frame = target;
  await macrotask();
}
