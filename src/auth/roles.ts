// Roles of the REST API, lowest first: each role may do what the ones before it may.

export const ROLES = ["viewer", "operator", "engineer", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** What a REST action declares (`role:` beside `rest:`): the lowest role it needs, or "public". */
export type RouteRole = Role | "public";

export function isRole(value: unknown): value is Role {
  return (ROLES as readonly unknown[]).includes(value);
}

export function isRouteRole(value: unknown): value is RouteRole {
  return value === "public" || isRole(value);
}

/** Whether `have` may do what needs `need`. */
export function roleAtLeast(have: Role, need: RouteRole): boolean {
  return need === "public" || ROLES.indexOf(have) >= ROLES.indexOf(need);
}
