import { ValidationError } from "./errors.ts";

/** Parses a REST time parameter given as epoch milliseconds or an ISO-8601 string. */
export function parseTimeParam(value: string | number | undefined, field: string, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  if (typeof value === "number" || /^\d+$/.test(value)) {
    const ms = Number(value);
    if (Number.isSafeInteger(ms)) return ms;
  } else if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new ValidationError(`${field} must be epoch milliseconds or an ISO-8601 time, got "${String(value).slice(0, 40)}"`, field);
}
