// The signed-in user: a login form when there is no session, the token kept in sessionStorage (one
// tab, gone when the tab closes) and sent on every request. docs/dashboard.md, docs/security.md.
import { roleAtLeast, type Role } from "../../src/auth/roles.ts";
import type { AuthUser, LoginResult } from "../../src/shared/types.ts";
import { h } from "./dom.ts";

const KEY = "plantwire.token";

export function sessionToken(): string | null {
  return sessionStorage.getItem(KEY);
}

/** The Authorization header of the session, if any. */
export function authHeader(): Record<string, string> {
  const token = sessionToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** A token the API refused (expired, user deleted): forget it and start over at the login form. */
export function sessionExpired(): void {
  sessionStorage.removeItem(KEY);
  location.reload();
}

async function whoAmI(): Promise<{ status: number; user: AuthUser | null }> {
  const res = await fetch("/api/auth/me", { headers: { Accept: "application/json", ...authHeader() } });
  return { status: res.status, user: res.ok ? ((await res.json()) as AuthUser | null) : null };
}

/** Resolves with the user once signed in; null when the API runs without authentication (API_AUTH=off). */
export async function signIn(root: HTMLElement): Promise<AuthUser | null> {
  const current = await whoAmI();
  if (current.status !== 401) return current.user;
  sessionStorage.removeItem(KEY);
  return new Promise((resolve) => {
    const error = h("p", { class: "login-error", role: "alert" });
    const name = h("input", { name: "name", autocomplete: "username", required: true, autofocus: true });
    const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
    const submit = h("button", { type: "submit" }, "Sign in");
    const form = h(
      "form",
      { class: "login panel" },
      h("h1", {}, "Sign in"),
      h("label", {}, "Name", name),
      h("label", {}, "Password", password),
      submit,
      error,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submit.disabled = true;
      error.textContent = "";
      void fetch("/api/auth/login", { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, body: JSON.stringify({ name: name.value, password: password.value }) })
        .then(async (res) => {
          const body = (await res.json().catch(() => null)) as (LoginResult & { error?: { message?: string } }) | null;
          if (!res.ok || !body) throw new Error(body?.error?.message ?? `${res.status} ${res.statusText}`);
          sessionStorage.setItem(KEY, body.token);
          root.replaceChildren();
          resolve(body.user);
        })
        .catch((err: Error) => {
          error.textContent = err.message;
          submit.disabled = false;
        });
    });
    root.replaceChildren(form);
    name.focus();
  });
}

let signedIn: AuthUser | null = null;

/**
 * Whether the signed-in user's role allows what needs `role`; always with API_AUTH=off (no user).
 * Only for showing what is possible: the API enforces the roles itself.
 */
export function may(role: Role): boolean {
  return signedIn === null || roleAtLeast(signedIn.role, role);
}

/** Why a control is disabled, for its tooltip. */
export function needsRole(role: Role): string {
  return `needs the role ${role} (you are ${signedIn?.role ?? "?"})`;
}

/** The header's user name and sign-out button. */
export function showUser(user: AuthUser | null): void {
  signedIn = user;
  const slot = document.getElementById("user");
  if (!slot || !user) return;
  const signOut = h("button", { class: "secondary small", type: "button" }, "Sign out");
  signOut.addEventListener("click", sessionExpired);
  slot.replaceChildren(h("span", { title: `role: ${user.role}` }, user.name), " ", signOut);
}
