import { describe, expect, it } from 'vitest';
import { AttemptSignal } from '../../../src/call/attemptSignal.js';

describe('AttemptSignal', () => {
  it('tells its listeners once, with the reason, and then throws it', () => {
    const signal = new AttemptSignal();
    const heard: string[] = [];
    const removed = () => heard.push('removed');
    signal.addEventListener('abort', () => heard.push('listener'));
    signal.addEventListener('abort', removed);
    signal.removeEventListener('abort', removed);
    signal.onabort = () => heard.push('onabort');
    expect(() => signal.throwIfAborted()).not.toThrow();
    signal.abort('unsubscribed');
    signal.abort('again');
    expect(heard).toEqual(['onabort', 'listener']);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe('unsubscribed');
    expect(() => signal.throwIfAborted()).toThrow('unsubscribed');
  });
});
