"use client";

import { useEffect, useState, type FormEvent } from "react";
import { createClient } from "@connectrpc/connect";
import { createBrowserTransport, loginHref, sessionEndOf } from "@custodian-bff/nextjs";
import { AccountService } from "@custodian-bff/acme/acme/storefront/v1/account_pb";

// The browser calls the gateway on this same origin (proxy.ts forwards the
// RPC path); the session cookie goes along, and no token is ever in the page.
const account = createClient(AccountService, createBrowserTransport());

export function ProfileForm(initial: { displayName: string; locale: string; marketingOptIn: boolean }) {
  const [displayName, setDisplayName] = useState(initial.displayName);
  const [locale, setLocale] = useState(initial.locale);
  const [marketingOptIn, setMarketingOptIn] = useState(initial.marketingOptIn);
  const [status, setStatus] = useState("");
  const [busy, setBusy] = useState(false);
  // Set once React runs in the browser: until then the form would submit as
  // a plain GET.
  const [ready, setReady] = useState(false);
  useEffect(() => setReady(true), []);

  async function save(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setStatus("Saving…");
    try {
      const res = await account.updateProfile({ displayName, locale, marketingOptIn });
      setDisplayName(res.profile?.displayName ?? displayName);
      setStatus("Saved.");
    } catch (err) {
      const ended = sessionEndOf(err);
      if (ended) {
        // The session ended meanwhile: sign in again and come back here.
        window.location.assign(loginHref(ended.loginUrl, window.location.pathname + window.location.search));
        return;
      }
      setStatus(`Not saved: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form id="profile-form" onSubmit={save} data-ready={ready ? "1" : undefined}>
      <p>
        <label>
          Display name <input name="displayName" value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
        </label>
      </p>
      <p>
        <label>
          Locale <input name="locale" value={locale} onChange={(e) => setLocale(e.target.value)} />
        </label>
      </p>
      <p>
        <label>
          <input
            type="checkbox"
            name="marketingOptIn"
            checked={marketingOptIn}
            onChange={(e) => setMarketingOptIn(e.target.checked)}
          />{" "}
          Send me offers
        </label>
      </p>
      <button type="submit" id="profile-save" disabled={busy || !ready}>
        Save
      </button>{" "}
      <span id="profile-status" role="status">
        {status}
      </span>
    </form>
  );
}
