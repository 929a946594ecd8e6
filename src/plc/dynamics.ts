// Small numeric building blocks of the process models. All exact in dt, so any scan period works.

export function clamp(value: number, lo: number, hi: number): number {
  return value < lo ? lo : value > hi ? hi : value;
}

/** First-order lag: where `current` is after `dt` seconds chasing `target` with time constant `tau`. */
export function lag(current: number, target: number, tau: number, dt: number): number {
  if (tau <= 0) return target;
  return target + (current - target) * Math.exp(-dt / tau);
}

/** Moves `current` toward `target` by at most `rate * dt` (a ramp limiter). */
export function ramp(current: number, target: number, rate: number, dt: number): number {
  const step = rate * dt;
  if (Math.abs(target - current) <= step) return target;
  return current + Math.sign(target - current) * step;
}

/** Rounds to the sensor's resolution (0 or undefined: no quantization). */
export function quantize(value: number, resolution: number | undefined): number {
  if (!resolution) return value;
  const q = Math.round(value / resolution) * resolution;
  // Trim binary noise such as 0.30000000000000004 so published numbers look like sensor readings.
  const decimals = Math.max(0, Math.ceil(-Math.log10(resolution)));
  return Number(q.toFixed(Math.min(decimals, 10)));
}

/**
 * Ornstein–Uhlenbeck step: a mean-reverting random walk (plant demand, load on a belt). Exact for
 * any dt: the stationary standard deviation is `sd` and the correlation time `tau` seconds.
 */
export function ouStep(x: number, mean: number, sd: number, tau: number, dt: number, gaussian: number): number {
  const decay = Math.exp(-dt / tau);
  return mean + (x - mean) * decay + sd * Math.sqrt(1 - decay * decay) * gaussian;
}
