// Initiates the MongoDB replica set once (run by mongosh in the mongo-init Job). Running it again
// is harmless: an initiated set is left as it is. MONGO_MEMBERS lists host:port of every member,
// in StatefulSet order; overlays/prod names three.
const setName = process.env.MONGO_REPLICA_SET || "rs0";
const hosts = (process.env.MONGO_MEMBERS || "").split(",").map((h) => h.trim()).filter(Boolean);
if (hosts.length === 0) throw new Error("MONGO_MEMBERS is empty");

let status = null;
try {
  status = rs.status();
} catch (err) {
  if (err.codeName !== "NotYetInitialized") throw err;
}

if (status) {
  print(`replica set ${status.set} already initiated with ${status.members.length} member(s)`);
} else {
  const result = rs.initiate({ _id: setName, members: hosts.map((host, i) => ({ _id: i, host })) });
  if (result.ok !== 1) throw new Error(`rs.initiate failed: ${JSON.stringify(result)}`);
  print(`replica set ${setName} initiated with ${hosts.join(", ")}`);
}
