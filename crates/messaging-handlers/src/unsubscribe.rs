//! One-click unsubscribe links: issued into every notification email by `notify-batch`,
//! opened by the HTTP API's `/unsubscribe`. The signed token is the authorisation (the link is
//! opened from a mailbox, without a bearer token), bound to one user of one tenant.

use messaging_core::signed::Signer;
use messaging_core::{TenantId, UserId};

/// The signer scope of unsubscribe tokens (no page cursor can pass for one).
const SCOPE: &str = "unsubscribe:email";

/// `{base}?c={clientId}&u={userId}&t={token}`: the link that turns `user`'s email off.
pub fn link(signer: &Signer, base: &str, tenant: &TenantId, user: &UserId) -> String {
    let token = signer.issue(tenant, user, SCOPE, "email");
    format!("{base}?c={tenant}&u={user}&t={token}")
}

/// The user a link's query parameters name, if its token is ours and was issued for them.
pub fn open(
    signer: &Signer,
    client: Option<&str>,
    user: Option<&str>,
    token: Option<&str>,
) -> Option<(TenantId, UserId)> {
    let tenant = TenantId::parse(client?).ok()?;
    let user = UserId::parse(user?).ok()?;
    signer.open(token?, &tenant, &user, SCOPE).ok()?;
    Some((tenant, user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_opens_for_its_user_only() {
        let signer = Signer::new(&[7; 32]);
        let (t, u) = (
            TenantId::parse("acme").unwrap(),
            UserId::parse("bob").unwrap(),
        );
        let url = link(&signer, "https://x/unsubscribe", &t, &u);
        let token = url.split("&t=").nth(1).unwrap();
        assert_eq!(
            open(&signer, Some("acme"), Some("bob"), Some(token)),
            Some((t.clone(), u.clone()))
        );
        assert_eq!(open(&signer, Some("acme"), Some("eve"), Some(token)), None);
        assert_eq!(open(&signer, Some("other"), Some("bob"), Some(token)), None);
        assert_eq!(open(&signer, Some("acme"), Some("bob"), None), None);
        // A page cursor for the same user is not an unsubscribe token.
        let cursor = signer.issue(&t, &u, "history:c:newest", "5");
        assert_eq!(
            open(&signer, Some("acme"), Some("bob"), Some(&cursor)),
            None
        );
    }
}
