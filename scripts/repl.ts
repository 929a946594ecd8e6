// Joins the running system as an extra Moleculer node (no services of its own) and opens the
// Moleculer REPL: `nodes`, `services`, `actions`, `call historian.latest --id press-01`, `events`.
import { ServiceBroker } from "moleculer";
import { brokerOptions } from "../moleculer.config.ts";
import { loadConfig } from "../src/shared/config.ts";

const config = loadConfig();
const broker = new ServiceBroker({ ...brokerOptions(config), nodeID: `repl-${process.pid}`, logLevel: "warn" });
await broker.start();
broker.repl();
