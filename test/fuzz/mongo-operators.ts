// Recognises a query operator that came from a request in a command sent to MongoDB (seen through
// the driver's command monitoring). The fuzzer puts FUZZ_MARKER in every operator it injects; the
// services' own query operators never take a request's string holding it as their operand, and
// the services use only the operators their source names.
import { FUZZ_MARKER } from "./rest-cases.ts";

/** The `$names` a source text uses: the operators the code itself may send. */
export function operatorsInSource(text: string): Set<string> {
  return new Set(text.match(/\$[a-zA-Z]+\b/g) ?? []);
}

/** What the driver writes itself: `countDocuments` is an aggregation `$match`, `$skip`, `$limit`, `$group` with `$sum`. */
const DRIVER_OPERATORS = ["$match", "$skip", "$limit", "$group", "$sum"];

/**
 * Operators whose operand is a filter (logical operators, `$match`) or a document to store (updates):
 * a request's text lands there as plain values legitimately, so they are walked, not judged.
 */
const CONTAINERS = new Set(["$and", "$or", "$nor", "$match", "$set", "$setOnInsert", "$inc", "$min", "$max"]);

/** The parts of a command that hold filters, updates or documents (not `$db`, `lsid`, ...). */
const COMMAND_PARTS = ["filter", "query", "q", "u", "update", "updates", "deletes", "documents", "pipeline", "sort", "projection"];

export interface OperatorLeak {
  /** Where in the command, e.g. `filter.device.$ne`. */
  path: string;
  operator: string;
  why: "operand carries the fuzz marker" | "operator plantwire never uses";
}

function containsMarker(value: unknown): boolean {
  if (typeof value === "string") return value.includes(FUZZ_MARKER);
  if (Array.isArray(value)) return value.some(containsMarker);
  if (value && typeof value === "object") return Object.entries(value).some(([k, v]) => k.includes(FUZZ_MARKER) || containsMarker(v));
  return false;
}

function walk(value: unknown, path: string, own: ReadonlySet<string>, leaks: OperatorLeak[]): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => walk(v, `${path}.${i}`, own, leaks));
    return;
  }
  if (!value || typeof value !== "object" || value.constructor?.name === "ObjectId" || value instanceof Date) return;
  for (const [key, child] of Object.entries(value)) {
    const at = `${path}.${key}`;
    if (key.startsWith("$")) {
      if (!own.has(key) && !DRIVER_OPERATORS.includes(key)) leaks.push({ path: at, operator: key, why: "operator plantwire never uses" });
      else if (!CONTAINERS.has(key) && containsMarker(child)) leaks.push({ path: at, operator: key, why: "operand carries the fuzz marker" });
    }
    // Operands are walked too: `$or` holds filters, and an operator key inside stored data is still one.
    walk(child, at, own, leaks);
  }
}

/** The injected operators in one command document (empty when none); `own`: the code's operators. */
export function operatorLeaks(command: Record<string, unknown>, own: ReadonlySet<string>): OperatorLeak[] {
  const leaks: OperatorLeak[] = [];
  for (const part of COMMAND_PARTS) if (part in command) walk(command[part], part, own, leaks);
  return leaks;
}

/** Whether a command carries the marker anywhere (as a plain value): proof the listener sees fuzzed requests. */
export function carriesMarker(command: Record<string, unknown>): boolean {
  return COMMAND_PARTS.some((part) => containsMarker(command[part]));
}
