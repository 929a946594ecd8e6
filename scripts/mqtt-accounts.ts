// MQTT accounts of the local Mosquitto (scripts/infra.sh): `npm run mqtt:accounts -- <command>`.
//   provision                      this system's service accounts and one per simulated PLC
//                                  (MOLECULER_NAMESPACE, MQTT_TOPIC_ROOT, PLC_COUNT, PLC_SEED, PLC_SITE)
//   device <site/area/line/device>...  accounts for real devices; prints each username and password
//   password <username>            the password of an account (derived from MQTT_SECRET)
//   remove <username>...           removes accounts
//   list                           usernames, kinds and topics (never a password)
// Reads MQTT_SECRET, MQTT_URL and the settings above like the services; writes
// $PLANTWIRE_DATA/mosquitto/{accounts.json,passwd,acl} (default .data) and reloads a running broker.
// Exit codes: 0 done, 1 failed (broker, files), 2 usage or MQTT_SECRET missing. docs/security.md, "MQTT accounts".
import { fileURLToPath } from "node:url";
import { changeAccounts, loadAccounts, type AccountStore } from "../src/mqtt-auth/account-store.ts";
import { derivedPassword, deviceAccount, deviceUsername, systemAccounts, usernameProblem } from "../src/mqtt-auth/accounts.ts";
import { loadConfig } from "../src/shared/config.ts";
import { isValidLevel } from "../src/shared/topics.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));

class UsageError extends Error {}

function secretOf(secret: string | undefined): string {
  if (!secret || secret.length < 32) throw new UsageError("MQTT_SECRET must be set to at least 32 characters (npm start keeps it in .data/secrets.env)");
  return secret;
}

async function main(args: string[]): Promise<void> {
  const config = loadConfig();
  const store: AccountStore = { dataDir: process.env.PLANTWIRE_DATA || `${REPO}.data` };
  const [command, ...rest] = args;
  switch (command) {
    case "provision": {
      const specs = systemAccounts(config, secretOf(config.mqttSecret));
      const changed = await changeAccounts(store, { upsert: specs, brokerUrl: config.mqttUrl });
      console.log(`mqtt accounts: ${specs.length} for namespace ${config.namespace} under ${config.topicRoot}/ (${config.plc.count} simulated PLCs)${changed ? "" : ", unchanged"}`);
      return;
    }
    case "device": {
      if (rest.length === 0) throw new UsageError("device needs at least one site/area/line/device");
      const secret = secretOf(config.mqttSecret);
      const specs = rest.map((path) => {
        const [site, area, line, device, extra] = path.split("/");
        if (extra !== undefined || ![site, area, line, device].every((level) => level !== undefined && isValidLevel(level))) {
          throw new UsageError(`"${path}" is not site/area/line/device with each level of letters, digits, ".", "_" or "-"`);
        }
        return deviceAccount(secret, deviceUsername(config.topicRoot, { site, area, line, device }));
      });
      await changeAccounts(store, { upsert: specs, brokerUrl: config.mqttUrl });
      for (const spec of specs) console.log(`username: ${spec.name}\npassword: ${spec.password}\n`);
      return;
    }
    case "password": {
      const [name] = rest;
      if (!name || !loadAccounts(store).has(name)) throw new UsageError(`no account "${name ?? ""}" (npm run mqtt:accounts -- list)`);
      console.log(derivedPassword(secretOf(config.mqttSecret), name));
      return;
    }
    case "remove": {
      const problem = rest.length === 0 ? "remove needs at least one username" : rest.map(usernameProblem).find(Boolean);
      if (problem) throw new UsageError(problem);
      const changed = await changeAccounts(store, { remove: rest });
      console.log(changed ? `removed ${rest.join(", ")}` : "no such account");
      return;
    }
    case "list":
      for (const account of loadAccounts(store).values()) {
        console.log(`${account.kind}\t${account.name}${account.topics.map(([access, topic]) => `\n\t  ${access} ${topic}`).join("")}`);
      }
      return;
    default:
      throw new UsageError(`unknown command "${command ?? ""}": provision, device, password, remove or list`);
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  console.error(`mqtt-accounts: ${err.message}`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
