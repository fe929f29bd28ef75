// The demo web client: sign in with a development token from the local gateway, then the app
// (app.tsx) on @stackpro/messaging-client and @stackpro/messaging-react. Every piece of user
// text is rendered by React as text, never as HTML.
import { StrictMode, useState, type FormEvent } from "react";
import { createRoot } from "react-dom/client";
import { MessagingClient, type Role } from "@stackpro/messaging-client";
import { MessagingProvider } from "@stackpro/messaging-react";
import { App, type Me } from "./app.js";
import { ToastProvider, useToast } from "./toast.js";

interface Session {
  me: Me;
  client: MessagingClient;
}

/** A development token for `params` from the local gateway (loopback only; `stackpro-dev token` mints the same). */
async function devToken(params: URLSearchParams): Promise<string> {
  const response = await fetch(`/dev/token?${params}`);
  const body = (await response.json()) as { token?: string; message?: string };
  if (!response.ok || !body.token) throw new Error(body.message ?? `could not get a token (HTTP ${response.status})`);
  return body.token;
}

function Login({ onSession }: { onSession: (session: Session) => void }) {
  const toast = useToast();
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const params = new URLSearchParams();
    for (const key of ["tenant", "user", "role", "name"]) params.set(key, String(form.get(key) ?? ""));
    setBusy(true);
    try {
      await devToken(params); // refused here (a bad id, a role that does not exist) rather than in a retry loop
      const { stage } = (await (await fetch("/dev/config.json")).json()) as { stage: string };
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      const client = new MessagingClient({
        url: `${scheme}://${location.host}/${stage}`,
        httpUrl: location.origin,
        // A fresh token whenever the client asks (expired, or refused once).
        getToken: () => devToken(params),
      });
      onSession({ client, me: { tenant: params.get("tenant") ?? "", user: params.get("user") ?? "", role: params.get("role") as Role } });
    } catch (error) {
      toast(error instanceof Error ? error.message : String(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section id="login" className="panel">
      <h2>Connect</h2>
      <form onSubmit={(e) => void submit(e)}>
        <label>
          Portal (clientId) <input name="tenant" defaultValue="123" required data-testid="tenant" />
        </label>
        <label>
          User <input name="user" defaultValue="alice" required data-testid="user" />
        </label>
        <label>
          Display name <input name="name" defaultValue="" data-testid="name" />
        </label>
        <label>
          Role
          <select name="role" defaultValue="USER" data-testid="role">
            <option>OWNER</option>
            <option>ADMIN</option>
            <option>USER</option>
          </select>
        </label>
        <button type="submit" disabled={busy} data-testid="connect">
          Connect
        </button>
      </form>
      <p className="hint">
        Development tokens come from this local gateway (<code>/dev/token</code>), signed with the local stack's secret. The page
        is built on <code>@stackpro/messaging-client</code> and <code>@stackpro/messaging-react</code>.
      </p>
    </section>
  );
}

function Root() {
  const [session, setSession] = useState<Session | undefined>();
  if (!session) return <Login onSession={setSession} />;
  return (
    <MessagingProvider client={session.client}>
      <App me={session.me} />
    </MessagingProvider>
  );
}

const container = document.getElementById("root");
if (!container) throw new Error("index.html has no #root");
createRoot(container).render(
  <StrictMode>
    <ToastProvider>
      <Root />
    </ToastProvider>
  </StrictMode>,
);
