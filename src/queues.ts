// Small concurrency and timing primitives shared by the pipeline: a per-key serial queue, a counting semaphore,
// a sliding-window counter, a poll-until, a bounded drain, an abortable sleep and per-key cancellation. No I/O, no knowledge of
// messages.

/**
 * Runs tasks one at a time per key, keys in parallel. A task that failed does not block or poison the tasks
 * queued behind it; a key is forgotten once its last task settles.
 */
export class KeyedQueue {
  #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const next = (this.#tails.get(key) ?? Promise.resolve()).catch(() => {}).then(task);
    this.#tails.set(key, next);
    const forget = () => {
      if (this.#tails.get(key) === next) this.#tails.delete(key);
    };
    next.then(forget, forget);
    return next;
  }

  /** Keys with a task queued or running. */
  get size(): number {
    return this.#tails.size;
  }
}

/** A counting semaphore: at most `n` tasks run at once, the rest wait in arrival order. */
export class Semaphore {
  #free: number;
  #queue: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((r) => this.#queue.push(r));
    try {
      return await fn();
    } finally {
      const next = this.#queue.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/** Event timestamps per key within a sliding window; at most `maxKeys` keys (the least recently hit dropped). */
export class WindowCounter {
  #hits = new Map<string, number[]>();
  constructor(
    readonly windowMs: number,
    readonly maxKeys = 1000,
  ) {}

  /** Records an event and returns how many fall in the window. */
  hit(key: string, now = Date.now()): number {
    const hits = this.#recent(key, now);
    hits.push(now);
    this.#hits.delete(key);
    this.#hits.set(key, hits);
    if (this.#hits.size > this.maxKeys) this.#hits.delete(this.#hits.keys().next().value!);
    return hits.length;
  }

  count(key: string, now = Date.now()): number {
    return this.#recent(key, now).length;
  }

  #recent(key: string, now: number): number[] {
    return (this.#hits.get(key) ?? []).filter((t) => now - t < this.windowMs);
  }
}

/** Polls `cond` every `everyMs` until it returns a value (returned) or `timeoutMs` passes (undefined). */
export async function until<T>(cond: () => T | undefined, timeoutMs: number, everyMs = 50): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = cond();
    if (v !== undefined) return v;
    if (Date.now() >= end) return undefined;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Waits until `tasks` is empty (tasks may add more while it waits), or `ms` pass; true when it emptied. */
export async function drainWithin(tasks: Set<Promise<unknown>>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const drain = async () => {
    while (tasks.size) await Promise.allSettled([...tasks]);
  };
  await Promise.race([drain(), new Promise((r) => (timer = setTimeout(r, Math.max(0, ms))))]);
  clearTimeout(timer);
  return tasks.size === 0;
}

/** Waits `ms`, or less when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    if (signal?.aborted) done();
    else signal?.addEventListener("abort", done);
  });
}

/**
 * One abort controller per key, each also aborted with `parent`: cancels one running task by key (a chat's /stop)
 * while a shutdown still cancels them all.
 */
export class Cancellers {
  #running = new Map<string, AbortController>();
  constructor(private readonly parent: AbortSignal) {}

  async run<T>(key: string, task: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ctl = new AbortController();
    const onParent = () => ctl.abort();
    if (this.parent.aborted) ctl.abort();
    else this.parent.addEventListener("abort", onParent);
    this.#running.set(key, ctl);
    try {
      return await task(ctl.signal);
    } finally {
      this.parent.removeEventListener("abort", onParent);
      if (this.#running.get(key) === ctl) this.#running.delete(key);
    }
  }

  /** Aborts the task running under `key`; false when none runs. */
  cancel(key: string): boolean {
    const ctl = this.#running.get(key);
    ctl?.abort();
    return ctl !== undefined;
  }
}
