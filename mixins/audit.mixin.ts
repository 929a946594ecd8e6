import type { ServiceSchema } from "moleculer";
import type { Db } from "mongodb";
import { AuditLog } from "../src/audit/audit-store.ts";
import type { AuditEntry, AuditInput } from "../src/audit/chain.ts";

/**
 * Gives a service `appendAudit(input, key?)`, which adds an entry to the hash-chained audit trail
 * (src/audit/). Needs `this.db` from mongoMixin; the log is made on first use, so the order in
 * which the mixins' `started` hooks run does not matter.
 */
export function auditMixin(): Partial<ServiceSchema> {
  return {
    methods: {
      appendAudit(input: AuditInput, key?: string): Promise<AuditEntry | null> {
        this.auditLog ??= new AuditLog(this.db as Db, (err) => this.logger.warn("audit head marker not moved", { error: err.message }));
        return (this.auditLog as AuditLog).append(input, key);
      },
    },

    created() {
      this.auditLog = undefined;
    },
  };
}
