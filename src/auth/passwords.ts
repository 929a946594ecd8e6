// Password hashing with scrypt (memory-hard, in node:crypto) and a random salt per user. The
// parameters are stored with each hash, so raising them later keeps old hashes verifiable.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from "node:crypto";

export interface PasswordHash {
  alg: "scrypt";
  /** CPU/memory cost, block size, parallelism. */
  N: number;
  r: number;
  p: number;
  salt: string;
  hash: string;
}

/** N = 2^15, r = 8: 32 MiB and roughly 100 ms per hash (OWASP's scrypt minimum is N = 2^17 at p = 1; 2^15 keeps logins fast on small nodes). */
export const SCRYPT_PARAMS = { N: 2 ** 15, r: 8, p: 1 } as const;
const KEY_LENGTH = 64;
export const MIN_PASSWORD_LENGTH = 12;

function derive(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r };
  return new Promise((resolve, reject) => scrypt(password.normalize("NFC"), salt, KEY_LENGTH, options, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<PasswordHash> {
  const salt = randomBytes(16);
  const hash = await derive(password, salt, SCRYPT_PARAMS);
  return { alg: "scrypt", ...SCRYPT_PARAMS, salt: salt.toString("base64"), hash: hash.toString("base64") };
}

export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  if (stored.alg !== "scrypt") return false;
  const expected = Buffer.from(stored.hash, "base64");
  const actual = await derive(password, Buffer.from(stored.salt, "base64"), stored);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

let dummy: Promise<PasswordHash> | undefined;

/** A hash to verify against for unknown users, so a login takes as long whether the name exists or not. */
export function dummyHash(): Promise<PasswordHash> {
  dummy ??= hashPassword(randomBytes(16).toString("hex"));
  return dummy;
}
