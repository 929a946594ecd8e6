// Checks the audit trail's hash chain in MongoDB: `npm run audit:verify`. Reads MONGO_URL like the
// services (src/shared/config.ts). Exit codes: 0 the chain is intact, 1 it is broken (the first
// broken link is printed), 2 it could not be checked (configuration, connection).
import { MongoClient } from "mongodb";
import { verifyStoredChain } from "../src/audit/audit-store.ts";
import { loadConfig } from "../src/shared/config.ts";

async function main(): Promise<number> {
  const config = loadConfig();
  const client = new MongoClient(config.mongoUrl, { serverSelectionTimeoutMS: 5_000, appName: "plantwire-audit-verify" });
  try {
    await client.connect();
    const verdict = await verifyStoredChain(client.db());
    if (verdict.ok) {
      console.log(`audit trail intact: ${verdict.entries} entries, head seq ${verdict.head.seq} hash ${verdict.head.hash}`);
      return 0;
    }
    console.error(`audit trail BROKEN at seq ${verdict.brokenAt}: ${verdict.reason}`);
    console.error(`last intact entry: seq ${verdict.head.seq} hash ${verdict.head.hash} (${verdict.entries} entries checked)`);
    return 1;
  } finally {
    await client.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`audit-verify: ${err.message}`);
    process.exit(2);
  },
);
