// MQTT accounts of a plantwire system: who may connect to Mosquitto and which topics each may use.
// Pure logic (password derivation, Mosquitto's password hash, the ACL text); src/mqtt-auth/account-store.ts
// writes the files and reloads the broker. docs/security.md, "MQTT accounts".
import { createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { plantLayout } from "../plc/plant-layout.ts";
import type { PlantwireConfig } from "../shared/config.ts";
import type { DeviceAddress } from "../shared/types.ts";

export type MqttAccess = "read" | "write" | "readwrite";

/** One Mosquitto user: devices get their topics from the ACL's patterns, services list theirs. */
export interface MqttAccount {
  name: string;
  kind: "device" | "service";
  /** Mosquitto's PBKDF2-SHA512 hash of the password (`$7$...`); the password itself is never stored. */
  hash: string;
  topics: Array<[MqttAccess, string]>;
}

/** The service accounts of one system (MOLECULER_NAMESPACE), with what each may do under its topic root. */
export type ServiceRole = "preprocessor" | "control" | "monitor" | "admin";

/**
 * A device's MQTT username is its topic prefix `{root}/{site}/{area}/{line}/{device}`: the ACL's
 * `%u` patterns then confine it to its own topics, so it can neither publish as another device nor
 * claim another place in the plant, and one broker can serve several roots without name clashes.
 */
export function deviceUsername(root: string, address: DeviceAddress): string {
  return `${root}/${address.site}/${address.area}/${address.line}/${address.device}`;
}

export function serviceUsername(namespace: string, role: ServiceRole): string {
  return `${namespace}-${role}`;
}

/**
 * Every password derives from MQTT_SECRET by HMAC, so a service or the PLC simulator needs only
 * that one secret, and the tooling can print a real device's password for its configuration
 * without storing it. 32 random-looking bytes: beyond brute force even with Mosquitto's fast hash.
 */
export function derivedPassword(secret: string, username: string): string {
  return createHmac("sha256", secret).update(`plantwire-mqtt\0${username}`).digest("base64url");
}

/** Mosquitto 2's default: `mosquitto_passwd` writes 101 iterations; it reads the count from each line. */
const PBKDF2_ITERATIONS = 101;

/** A password hash in Mosquitto 2's `$7$` format (PBKDF2-SHA512, 12-byte salt, 64-byte hash). */
export function mosquittoHash(password: string, salt: Buffer = randomBytes(12), iterations = PBKDF2_ITERATIONS): string {
  const hash = pbkdf2Sync(password, salt, iterations, 64, "sha512");
  return `$7$${iterations}$${salt.toString("base64")}$${hash.toString("base64")}`;
}

/** True when `password` matches a `$7$` hash (as Mosquitto would decide). */
export function verifyMosquittoHash(password: string, hash: string): boolean {
  const [, kind, iterations, salt, digest] = hash.split("$");
  if (kind !== "7" || !salt || !digest) return false;
  const expected = Buffer.from(digest, "base64");
  const actual = pbkdf2Sync(password, Buffer.from(salt, "base64"), Number(iterations), expected.length, "sha512");
  return timingSafeEqual(actual, expected);
}

/** The topics a service account may use under `root`. */
export function serviceTopics(role: ServiceRole, root: string): Array<[MqttAccess, string]> {
  const each = (kind: string) => `${root}/+/+/+/+/${kind}`;
  switch (role) {
    // Subscribes to every device's births/deaths and telemetry (a shared subscription).
    case "preprocessor":
      return [["read", each("state")], ["read", each("telemetry")]];
    // Sends commands, receives the PLCs' acknowledgements.
    case "control":
      return [["write", each("cmd")], ["read", each("cmd/ack")]];
    // Read-only view of the whole namespace (MQTT Explorer, a second historian, test observers).
    case "monitor":
      return [["read", `${root}/#`]];
    // Everything under the root: clearing a decommissioned device's retained birth, diagnostics.
    case "admin":
      return [["readwrite", `${root}/#`]];
  }
}

export const SERVICE_ROLES: readonly ServiceRole[] = ["preprocessor", "control", "monitor", "admin"];

/** A username that Mosquitto's ACL would refuse to substitute, or that breaks the password file. */
export function usernameProblem(name: string): string | undefined {
  if (name.length === 0 || name.length > 256) return "must be 1 to 256 characters";
  if (/[+#:\s\0]/.test(name)) return "must not contain +, #, :, whitespace or NUL";
  return undefined;
}

/** An account as the tooling asks for it: the password in clear, hashed only when stored. */
export interface AccountSpec extends Omit<MqttAccount, "hash"> {
  password: string;
}

export function deviceAccount(secret: string, username: string): AccountSpec {
  return { name: username, kind: "device", password: derivedPassword(secret, username), topics: [] };
}

/** The stored account for a spec; an existing one whose hash still matches keeps its salt, so re-provisioning changes nothing. */
export function storedAccount(spec: AccountSpec, existing?: MqttAccount): MqttAccount {
  const { password, ...rest } = spec;
  const hash = existing && verifyMosquittoHash(password, existing.hash) ? existing.hash : mosquittoHash(password);
  return { ...rest, hash };
}

/** True when two stored accounts would render the same files. */
export function sameAccount(a: MqttAccount, b: MqttAccount | undefined): boolean {
  return b !== undefined && a.hash === b.hash && a.kind === b.kind && JSON.stringify(a.topics) === JSON.stringify(b.topics);
}

/**
 * What a system needs on its broker: its four service accounts and an account for each simulated
 * PLC (PLC_COUNT, PLC_SEED, PLC_SITE: every shard's PLCs).
 */
export function systemAccounts(config: Pick<PlantwireConfig, "namespace" | "topicRoot" | "plc">, secret: string): AccountSpec[] {
  const services = SERVICE_ROLES.map((role): AccountSpec => {
    const name = serviceUsername(config.namespace, role);
    return { name, kind: "service", password: derivedPassword(secret, name), topics: serviceTopics(role, config.topicRoot) };
  });
  const devices = plantLayout(config.plc.count, config.plc.seed, config.plc.site).map((plc) => deviceAccount(secret, deviceUsername(config.topicRoot, plc)));
  return [...services, ...devices];
}

/** `user:hash` lines, sorted so that a regenerated file only differs where an account did. */
export function renderPasswordFile(accounts: Iterable<MqttAccount>): string {
  return [...accounts]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((a) => `${a.name}:${a.hash}\n`)
    .join("");
}

/** Mosquitto's ACL file: the device patterns, then a section per service account. Everything else is denied. */
export function renderAclFile(accounts: Iterable<MqttAccount>): string {
  const lines = [
    "# generated by scripts/mqtt-accounts.ts from accounts.json; edits are overwritten",
    "# a device's username is its topic prefix {root}/{site}/{area}/{line}/{device}",
    "pattern write %u/telemetry",
    "pattern write %u/state",
    "pattern write %u/cmd/ack",
    "pattern write %u/groundtruth",
    "pattern read %u/cmd",
  ];
  for (const account of [...accounts].filter((a) => a.topics.length > 0).sort((a, b) => a.name.localeCompare(b.name))) {
    lines.push("", `user ${account.name}`, ...account.topics.map(([access, topic]) => `topic ${access} ${topic}`));
  }
  return lines.join("\n") + "\n";
}
