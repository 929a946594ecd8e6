/** One dependency's state as a service sees it. */
export interface HealthCheck {
  ok: boolean;
  detail?: string;
}

/** What every service's `health` action returns. */
export interface ServiceHealth {
  service: string;
  nodeID: string;
  ok: boolean;
  checks: Record<string, HealthCheck>;
}

/** Runs a probe with a deadline so one hung dependency cannot hang the health answer. */
export async function probe(run: () => Promise<unknown>, timeoutMs = 2_000): Promise<HealthCheck> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      run(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true };
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}
