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

  it('tells every listener once however they were added and removed', () => {
    const signal = new AttemptSignal();
    const heard: string[] = [];
    const listener = (name: string) => () => heard.push(name);
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(listener) as [
      () => number,
      () => number,
      () => number,
      () => number,
    ];
    signal.addEventListener('abort', a);
    signal.addEventListener('abort', b);
    signal.addEventListener('abort', c);
    signal.removeEventListener('abort', a);
    signal.addEventListener('abort', b); // already there: still once
    signal.addEventListener('abort', d);
    signal.addEventListener('abort', c);
    signal.removeEventListener('abort', c);
    signal.addEventListener('progress', a); // not an abort listener
    signal.abort('stop');
    expect(heard.sort()).toEqual(['b', 'd']);
  });

  it('lets a listener remove another while the abort is told', () => {
    const signal = new AttemptSignal();
    const heard: string[] = [];
    const second = () => heard.push('second');
    signal.addEventListener('abort', () => {
      heard.push('first');
      signal.removeEventListener('abort', second);
    });
    signal.addEventListener('abort', second);
    signal.abort('stop');
    expect(heard).toEqual(['first']);
  });
});
