// The MQTT accounts of a local broker on disk: accounts.json (what the tooling manages) and the
// password and ACL files Mosquitto reads, all in $PLANTWIRE_DATA/mosquitto; a change reloads the
// broker (SIGHUP) and waits until it accepts the new credentials.
import { chownSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import mqtt from "mqtt";
import { renderAclFile, renderPasswordFile, sameAccount, storedAccount, type AccountSpec, type MqttAccount } from "./accounts.ts";

export interface AccountStore {
  /** $PLANTWIRE_DATA of the broker's stack (scripts/infra.sh): files in ./mosquitto, pid in ./run. */
  dataDir: string;
}


function accountsDir(store: AccountStore): string {
  return join(store.dataDir, "mosquitto");
}

export function loadAccounts(store: AccountStore): Map<string, MqttAccount> {
  const file = join(accountsDir(store), "accounts.json");
  if (!existsSync(file)) return new Map();
  const list = JSON.parse(readFileSync(file, "utf8")) as MqttAccount[];
  return new Map(list.map((a) => [a.name, a]));
}

/**
 * Written next to the broker's persistence, which infra.sh hands to the `mosquitto` user when it
 * runs as root: the files go to the directory's owner, readable by nobody else.
 */
function writePrivate(dir: string, name: string, text: string): void {
  const file = join(dir, name);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: 0o600 });
  if (process.getuid?.() === 0) {
    const owner = statSync(dir);
    chownSync(temporary, owner.uid, owner.gid);
  }
  // Renamed into place: the broker never reads half a file.
  renameSync(temporary, file);
}

function brokerPid(store: AccountStore): number | undefined {
  try {
    const pid = Number(readFileSync(join(store.dataDir, "run", "mosquitto.pid"), "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

async function waitAccepted(url: string, probe: AccountSpec, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const client = await mqtt.connectAsync(url, { username: probe.name, password: probe.password, clientId: `plantwire-accounts-probe-${process.pid}`, reconnectPeriod: 0, connectTimeout: 2_000 });
      await client.endAsync();
      return;
    } catch (err) {
      // Mosquitto reloads its files asynchronously after SIGHUP: refused until then.
      if (Date.now() > deadline) throw new Error(`the MQTT broker did not accept ${probe.name} within ${timeoutMs} ms after reloading its accounts: ${(err as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

export interface AccountChange {
  upsert?: AccountSpec[];
  /** Account names to remove, or a predicate over the stored accounts. */
  remove?: string[] | ((account: MqttAccount) => boolean);
  /** The broker's address: after a reload, wait until an added or changed account gets in. */
  brokerUrl?: string;
}

/**
 * Applies a change, rewrites the broker's files and reloads a running broker. Unchanged accounts
 * keep their hashes, so provisioning the same system again writes nothing and reloads nothing.
 * Returns whether the files changed.
 */
export async function changeAccounts(store: AccountStore, change: AccountChange): Promise<boolean> {
  const accounts = loadAccounts(store);
  let changed = false;
  let probe: AccountSpec | undefined;
  const removes = change.remove ?? [];
  for (const account of [...accounts.values()]) {
    if (typeof removes === "function" ? removes(account) : removes.includes(account.name)) {
      accounts.delete(account.name);
      changed = true;
    }
  }
  for (const spec of change.upsert ?? []) {
    const account = storedAccount(spec, accounts.get(spec.name));
    if (!sameAccount(account, accounts.get(spec.name))) {
      changed = true;
      probe ??= spec;
    }
    accounts.set(spec.name, account);
  }
  const dir = accountsDir(store);
  if (!changed && existsSync(join(dir, "passwd"))) return false;
  mkdirSync(dir, { recursive: true });
  writePrivate(dir, "accounts.json", JSON.stringify([...accounts.values()], null, 1) + "\n");
  writePrivate(dir, "passwd", renderPasswordFile(accounts.values()));
  writePrivate(dir, "acl", renderAclFile(accounts.values()));
  const pid = brokerPid(store);
  if (pid !== undefined) {
    process.kill(pid, "SIGHUP");
    if (change.brokerUrl && probe) await waitAccepted(change.brokerUrl, probe, 10_000);
  }
  return true;
}
