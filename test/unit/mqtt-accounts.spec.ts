import { strict as assert } from "node:assert";
import {
  derivedPassword,
  deviceUsername,
  mosquittoHash,
  renderAclFile,
  renderPasswordFile,
  sameAccount,
  storedAccount,
  systemAccounts,
  usernameProblem,
  verifyMosquittoHash,
} from "../../src/mqtt-auth/accounts.ts";
import { ALL_SERVICES, loadConfig, MQTT_CLIENT_SERVICES, requireSecrets } from "../../src/shared/config.ts";

const SECRET = "a-test-secret-of-more-than-thirty-two-characters";

describe("MQTT accounts", () => {
  it("verifies a hash written by mosquitto_passwd 2.0 and writes hashes in the same format", () => {
    // `mosquitto_passwd -b pw alice secret` (Mosquitto 2.0.11)
    const written = "$7$101$RNW3QTZsTersQi8x$jemvjpmPy6RA3X7tUzbWMFwc6ZLfw6WytCIbtroKJRMj0QTdubCQKjUIaOR4mQ6u+vxquJ5dtiN9eugPzaotdA==";
    assert.equal(verifyMosquittoHash("secret", written), true);
    assert.equal(verifyMosquittoHash("Secret", written), false);
    const ours = mosquittoHash("secret");
    assert.match(ours, /^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
    assert.equal(verifyMosquittoHash("secret", ours), true);
    assert.notEqual(mosquittoHash("secret"), ours, "a fresh salt each time");
  });

  it("derives a different password per account and per secret", () => {
    const a = derivedPassword(SECRET, "scada/v1/plant1/press-shop/line1/press-01");
    assert.equal(a, derivedPassword(SECRET, "scada/v1/plant1/press-shop/line1/press-01"));
    assert.notEqual(a, derivedPassword(SECRET, "scada/v1/plant1/press-shop/line1/press-02"));
    assert.notEqual(a, derivedPassword(`${SECRET}x`, "scada/v1/plant1/press-shop/line1/press-01"));
    assert.ok(a.length >= 43);
  });

  it("gives a system its four service accounts and one account per simulated PLC, named by topic prefix", () => {
    const config = loadConfig({ MOLECULER_NAMESPACE: "plant", MQTT_TOPIC_ROOT: "scada/v1", PLC_COUNT: "3", PLC_SITE: "s1" });
    const specs = systemAccounts(config, SECRET);
    assert.deepEqual(
      specs.map((s) => [s.kind, s.name]),
      [
        ["service", "plant-preprocessor"],
        ["service", "plant-control"],
        ["service", "plant-monitor"],
        ["service", "plant-admin"],
        ["device", "scada/v1/s1/press-shop/line1/press-01"],
        ["device", "scada/v1/s1/paint-shop/line1/oven-01"],
        ["device", "scada/v1/s1/utilities/line1/pump-01"],
      ],
    );
    assert.equal(deviceUsername("scada/v1", { site: "s1", area: "a", line: "l", device: "d" }), "scada/v1/s1/a/l/d");
    assert.deepEqual(specs[0].topics, [["read", "scada/v1/+/+/+/+/state"], ["read", "scada/v1/+/+/+/+/telemetry"]]);
    assert.deepEqual(specs[1].topics, [["write", "scada/v1/+/+/+/+/cmd"], ["read", "scada/v1/+/+/+/+/cmd/ack"]]);
    for (const spec of specs) assert.equal(spec.password, derivedPassword(SECRET, spec.name));
  });

  it("keeps an account's hash while its password still matches, so provisioning again changes nothing", () => {
    const [spec] = systemAccounts(loadConfig({ PLC_COUNT: "0" }), SECRET);
    const first = storedAccount(spec);
    const again = storedAccount(spec, first);
    assert.equal(again.hash, first.hash);
    assert.ok(sameAccount(again, first));
    const rotated = storedAccount({ ...spec, password: derivedPassword("another-secret-of-more-than-32-characters", spec.name) }, first);
    assert.ok(!sameAccount(rotated, first), "a new secret rewrites the hash");
  });

  it("renders the password file and an ACL where devices get only their own topics", () => {
    const specs = systemAccounts(loadConfig({ MOLECULER_NAMESPACE: "plant", PLC_COUNT: "1" }), SECRET);
    const accounts = specs.map((s) => storedAccount(s));
    const passwd = renderPasswordFile(accounts).trim().split("\n");
    assert.equal(passwd.length, 5);
    for (const line of passwd) {
      const [name, hash] = line.split(/:(.*)/s);
      assert.ok(verifyMosquittoHash(derivedPassword(SECRET, name), hash), name);
    }
    const acl = renderAclFile(accounts);
    for (const pattern of ["pattern write %u/telemetry", "pattern write %u/state", "pattern write %u/cmd/ack", "pattern write %u/groundtruth", "pattern read %u/cmd"]) {
      assert.ok(acl.includes(`${pattern}\n`), pattern);
    }
    assert.ok(acl.includes("user plant-control\ntopic write scada/v1/+/+/+/+/cmd\ntopic read scada/v1/+/+/+/+/cmd/ack\n"));
    assert.ok(!acl.includes("user scada/v1/"), "devices have no section of their own");
    assert.ok(!/^topic .* #$/m.test(acl), "nobody may use every topic");
  });

  it("refuses to start an MQTT client service without MQTT_SECRET unless MQTT_AUTH=off", () => {
    for (const service of ALL_SERVICES) {
      const start = (env: Record<string, string>) => () => requireSecrets(loadConfig({ SERVICES: service, API_AUTH: "off", ...env }));
      if (MQTT_CLIENT_SERVICES.includes(service)) {
        assert.throws(start({}), /MQTT_SECRET must be set/, service);
        assert.throws(start({ MQTT_SECRET: "short" }), /MQTT_SECRET/, service);
      } else {
        assert.doesNotThrow(start({}), service);
      }
      assert.doesNotThrow(start({ MQTT_SECRET: SECRET }), service);
      assert.doesNotThrow(start({ MQTT_AUTH: "off" }), service);
    }
    assert.deepEqual([...MQTT_CLIENT_SERVICES].sort(), ["control", "plc-simulator", "preprocessor"]);
  });

  it("refuses usernames Mosquitto's ACL patterns or password file cannot hold", () => {
    assert.equal(usernameProblem("scada/v1/plant1/a/l/d"), undefined);
    for (const bad of ["", "a+b", "a/#", "a:b", "a b", "x".repeat(257)]) assert.ok(usernameProblem(bad), JSON.stringify(bad));
  });
});
