//! One-click unsubscribe links: issued into every notification email by `notify-batch`,
//! opened by the HTTP API's `/unsubscribe`. The signed token is the authorisation (the link is
//! opened from a mailbox, without a bearer token), bound to one user of one tenant, and valid
//! for [`LINK_VALIDITY_DAYS`] from the email it came in.
//!
//! Opening the link (`GET`) changes nothing: mail scanners and link previews fetch every link
//! of a message, so `GET` answers a page with a button; the change is a `POST`, either from
//! that button or straight from the mail client (RFC 8058 one-click, `List-Unsubscribe-Post`).

use crate::signed::Signer;
use crate::templates::escape_html;
use crate::{TenantId, UserId};

/// The signer scope of unsubscribe tokens (no page cursor can pass for one).
const SCOPE: &str = "unsubscribe:email";
/// How long a link works after its email was sent.
pub const LINK_VALIDITY_DAYS: i64 = 60;
const DAY_MILLIS: i64 = 24 * 3600 * 1000;

/// `{base}?c={clientId}&u={userId}&t={token}`: the link that turns `user`'s email off, valid
/// until [`LINK_VALIDITY_DAYS`] after `now_millis`.
pub fn link(
    signer: &Signer,
    base: &str,
    tenant: &TenantId,
    user: &UserId,
    now_millis: i64,
) -> String {
    let expires = now_millis + LINK_VALIDITY_DAYS * DAY_MILLIS;
    let token = signer.issue(tenant, user, SCOPE, &format!("email:{expires}"));
    format!("{base}?c={tenant}&u={user}&t={token}")
}

/// Why a link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Altered, for someone else, not ours, or missing a part.
    Invalid,
    /// Ours and intact, but older than [`LINK_VALIDITY_DAYS`].
    Expired,
}

/// The user a link's query parameters name, if its token is ours, was issued for them and
/// has not expired at `now_millis`.
pub fn open(
    signer: &Signer,
    client: Option<&str>,
    user: Option<&str>,
    token: Option<&str>,
    now_millis: i64,
) -> Result<(TenantId, UserId), Refused> {
    let tenant = client
        .and_then(|c| TenantId::parse(c).ok())
        .ok_or(Refused::Invalid)?;
    let user = user
        .and_then(|u| UserId::parse(u).ok())
        .ok_or(Refused::Invalid)?;
    let position = signer
        .open(token.ok_or(Refused::Invalid)?, &tenant, &user, SCOPE)
        .map_err(|_| Refused::Invalid)?;
    let expires: i64 = position
        .strip_prefix("email:")
        .and_then(|e| e.parse().ok())
        // A link of the first version carried no expiry: treated as expired.
        .ok_or(Refused::Expired)?;
    if now_millis > expires {
        return Err(Refused::Expired);
    }
    Ok((tenant, user))
}

/// The page a valid link shows: what it will do, and the button that does it (a POST to the
/// same address).
pub fn confirm_page(action: &str) -> String {
    page(&format!(
        "<p>Stop receiving notification emails from this portal?</p>\
         <form method=\"post\" action=\"{}\">\
         <button type=\"submit\">Turn off email notifications</button></form>\
         <p>You can turn them back on in the portal's settings.</p>",
        escape_html(action)
    ))
}

/// A page that says `text`.
pub fn message_page(text: &str) -> String {
    page(&format!("<p>{}</p>", escape_html(text)))
}

fn page(body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta name=\"robots\" content=\"noindex\">\
         <title>Email notifications</title></head><body>{body}</body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn ids() -> (TenantId, UserId) {
        (
            TenantId::parse("acme").unwrap(),
            UserId::parse("bob").unwrap(),
        )
    }

    fn token_of(url: &str) -> &str {
        url.split("&t=").nth(1).unwrap()
    }

    #[test]
    fn a_link_opens_for_its_user_only() {
        let signer = Signer::new(&[7; 32]);
        let (t, u) = ids();
        let url = link(&signer, "https://x/unsubscribe", &t, &u, NOW);
        let token = token_of(&url);
        assert_eq!(
            open(&signer, Some("acme"), Some("bob"), Some(token), NOW),
            Ok((t.clone(), u.clone()))
        );
        for (client, user, token) in [
            (Some("acme"), Some("eve"), Some(token)),
            (Some("other"), Some("bob"), Some(token)),
            (Some("acme"), Some("bob"), None),
            (None, Some("bob"), Some(token)),
            (Some("acme#x"), Some("bob"), Some(token)),
        ] {
            assert_eq!(
                open(&signer, client, user, token, NOW),
                Err(Refused::Invalid),
                "{client:?} {user:?}"
            );
        }
        // A page cursor for the same user is not an unsubscribe token.
        let cursor = signer.issue(&t, &u, "history:c:newest", "5");
        assert_eq!(
            open(&signer, Some("acme"), Some("bob"), Some(&cursor), NOW),
            Err(Refused::Invalid)
        );
    }

    #[test]
    fn a_link_expires_after_its_validity() {
        let signer = Signer::new(&[7; 32]);
        let (t, u) = ids();
        let url = link(&signer, "https://x/unsubscribe", &t, &u, NOW);
        let last_valid = NOW + LINK_VALIDITY_DAYS * DAY_MILLIS;
        let open_at = |at| open(&signer, Some("acme"), Some("bob"), Some(token_of(&url)), at);
        assert!(open_at(last_valid).is_ok());
        assert_eq!(open_at(last_valid + 1), Err(Refused::Expired));
        // The first version's tokens had no expiry: never valid again.
        let legacy = signer.issue(&t, &u, SCOPE, "email");
        assert_eq!(
            open(&signer, Some("acme"), Some("bob"), Some(&legacy), NOW),
            Err(Refused::Expired)
        );
    }

    #[test]
    fn the_confirm_page_posts_back_to_the_escaped_address() {
        let html = confirm_page("/unsubscribe?c=acme&u=bob&t=a\"b");
        assert!(html.contains("method=\"post\""), "{html}");
        assert!(
            html.contains("action=\"/unsubscribe?c=acme&amp;u=bob&amp;t=a&quot;b\""),
            "{html}"
        );
    }
}
