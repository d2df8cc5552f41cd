// Retention: the journal, session history and the media cache are pruned at start and then hourly, so nothing is
// kept past `retentionDays` (privacy); the media cache is also capped in size, the oldest files going first.
import { pruneMediaCache } from "./attachments.ts";
import { getLog } from "./log.ts";
import type { Store } from "./store.ts";

const MEDIA_CACHE_MAX_BYTES = 1024 * 1024 * 1024;

/** Prunes now and every hour; returns the function that stops it. */
export function startPruning(store: Pick<Store, "prune">, stateDir: string, retentionDays: number): () => void {
  const log = getLog("gateway");
  const run = () => {
    try {
      const n = store.prune(retentionDays);
      if (Object.values(n).some((x) => x > 0)) log.debug(`pruned journal: ${JSON.stringify(n)}`);
    } catch (e) {
      log.warn(`pruning the journal failed: ${(e as Error).message}`);
    }
    pruneMediaCache(stateDir, retentionDays * 86_400_000, MEDIA_CACHE_MAX_BYTES).catch((e) =>
      log.warn(`pruning the media cache failed: ${(e as Error).message}`)
    );
  };
  run();
  const timer = setInterval(run, 3_600_000);
  timer.unref?.();
  return () => clearInterval(timer);
}
