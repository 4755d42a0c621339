import { withLogin } from "@custodian-bff/nextjs/server";
import { accountClient } from "@/lib/clients";
import { ProfileForm } from "./profile-form";

// The profile's current values come from the server, in the first HTML; the
// form is a client component that saves through the browser transport.
export default async function ProfilePage() {
  const d = await withLogin(() => accountClient().getDashboard({ recentOrderCount: 0 }));
  const p = d.profile;
  if (!p) {
    return <p>Your profile is unavailable right now; try again in a moment.</p>;
  }
  return (
    <>
      <h1>Profile</h1>
      <p>
        <span id="profile-name">{p.displayName}</span> · <span id="profile-email">{p.email}</span>
      </p>
      <ProfileForm displayName={p.displayName} locale={p.locale} marketingOptIn={p.marketingOptIn} />
    </>
  );
}
