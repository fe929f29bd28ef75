//! The seed's notification templates (NEW_MESSAGE, FILE_SHARED, and the mention and comment
//! variants), filled from a notification's data: in-app text, email subject with an HTML and
//! a plain-text body, push title and body; and the digest that gathers several.
//!
//! Every value that came from a user (names, message text, file names) is HTML-escaped in the
//! HTML part and cut to a preview length everywhere; templates themselves are constants.

use serde::{Deserialize, Serialize};

use crate::notify::NotificationKind;

/// Longest message preview in any channel, in characters.
pub const PREVIEW_CHARS: usize = 140;

/// What a notification says, as stored with it (from the event that caused it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_title: Option<String>,
    /// The message (NEW_MESSAGE, MENTION): read markers at or past it suppress the notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_preview: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

/// One notification in every channel's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub in_app: String,
    pub email_subject: String,
    pub email_html: String,
    pub email_text: String,
    pub push_title: String,
    pub push_body: String,
}

/// An email ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// HTML-escapes text for element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A one-line preview: whitespace collapsed, cut to [`PREVIEW_CHARS`] with an ellipsis.
pub fn preview(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= PREVIEW_CHARS {
        collapsed
    } else {
        let cut: String = collapsed.chars().take(PREVIEW_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// Replaces `{name}` placeholders; unknown names stay as they are.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// The seed's templates, by kind: (in-app, email subject, push title, push body).
fn templates(kind: NotificationKind) -> (&'static str, &'static str, &'static str, &'static str) {
    match kind {
        NotificationKind::NewMessage => (
            "New message from {senderName}",
            "New message in {clientName} portal",
            "{senderName}",
            "{messagePreview}",
        ),
        NotificationKind::Mention => (
            "{senderName} mentioned you",
            "{senderName} mentioned you in {clientName} portal",
            "{senderName} mentioned you",
            "{messagePreview}",
        ),
        NotificationKind::FileShared => (
            "{sharerName} shared {fileName} with you",
            "File shared: {fileName}",
            "{sharerName} shared a file",
            "{fileName}",
        ),
        NotificationKind::FileComment => (
            "{senderName} commented on {fileName}",
            "New comment on {fileName}",
            "{senderName} on {fileName}",
            "{messagePreview}",
        ),
    }
}

/// The line a digest (or the email body) shows for one notification, unescaped.
fn detail(kind: NotificationKind, data: &NotificationData) -> String {
    let who = data.sender_name.as_deref().unwrap_or("Someone");
    match kind {
        NotificationKind::NewMessage | NotificationKind::Mention => {
            let place = data
                .conversation_title
                .as_deref()
                .or(data.conversation_id.as_deref())
                .unwrap_or("a conversation");
            format!(
                "{who} in {place}: {}",
                data.message_preview.as_deref().unwrap_or("")
            )
        }
        NotificationKind::FileShared => format!(
            "{who} shared {} with you",
            data.file_name.as_deref().unwrap_or("a file")
        ),
        NotificationKind::FileComment => format!(
            "{who} on {}: {}",
            data.file_name.as_deref().unwrap_or("your file"),
            data.message_preview.as_deref().unwrap_or("")
        ),
    }
}

/// One notification, every channel, for the portal `client_name` at `portal_url`.
pub fn render(
    kind: NotificationKind,
    data: &NotificationData,
    client_name: &str,
    portal_url: &str,
) -> Rendered {
    let sender = data.sender_name.as_deref().unwrap_or("Someone");
    let preview_text = preview(data.message_preview.as_deref().unwrap_or(""));
    let file = data.file_name.as_deref().unwrap_or("a file");
    let values = [
        ("senderName", sender),
        ("sharerName", sender),
        ("clientName", client_name),
        ("messagePreview", preview_text.as_str()),
        ("fileName", file),
    ];
    let (in_app, subject, push_title, push_body) = templates(kind);
    let line = detail(kind, data);
    let (html, text) = email_bodies(&[line], client_name, portal_url, None);
    Rendered {
        in_app: fill(in_app, &values),
        email_subject: fill(subject, &values),
        email_html: html,
        email_text: text,
        push_title: fill(push_title, &values),
        push_body: fill(push_body, &values),
    }
}

fn email_bodies(
    lines: &[String],
    client_name: &str,
    portal_url: &str,
    unsubscribe_url: Option<&str>,
) -> (String, String) {
    let mut html = format!(
        "<!doctype html><html><body style=\"font-family:system-ui,sans-serif\"><h2>{}</h2><ul>",
        escape_html(client_name)
    );
    let mut text = format!("{client_name}\n\n");
    for line in lines {
        html.push_str(&format!("<li>{}</li>", escape_html(line)));
        text.push_str(&format!("- {line}\n"));
    }
    html.push_str(&format!(
        "</ul><p><a href=\"{}\">Open the portal</a></p>",
        escape_html(portal_url)
    ));
    text.push_str(&format!("\nOpen the portal: {portal_url}\n"));
    if let Some(url) = unsubscribe_url {
        html.push_str(&format!(
            "<p style=\"color:#777;font-size:12px\"><a href=\"{}\">Turn off these emails</a></p>",
            escape_html(url)
        ));
        text.push_str(&format!("\nTurn off these emails: {url}\n"));
    }
    html.push_str("</body></html>");
    (html, text)
}

/// The email for one user's pending notifications: the single notification's own email when
/// there is one, a digest when there are several. Both carry the unsubscribe link.
pub fn email(
    notifications: &[(NotificationKind, NotificationData)],
    client_name: &str,
    portal_url: &str,
    unsubscribe_url: &str,
) -> Email {
    let lines: Vec<String> = notifications
        .iter()
        .map(|(kind, data)| {
            let mut data = data.clone();
            data.message_preview = data.message_preview.as_deref().map(preview);
            detail(*kind, &data)
        })
        .collect();
    let subject = match notifications {
        [(kind, data)] => render(*kind, data, client_name, portal_url).email_subject,
        _ => format!(
            "{} new notifications in {client_name} portal",
            notifications.len()
        ),
    };
    let (html, text) = email_bodies(&lines, client_name, portal_url, Some(unsubscribe_url));
    Email {
        subject,
        html,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(sender: &str, text: &str) -> NotificationData {
        NotificationData {
            conversation_id: Some("456".into()),
            conversation_title: Some("Contracts".into()),
            seq: Some(3),
            sender_name: Some(sender.into()),
            message_preview: Some(text.into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_seed_templates_are_filled_from_the_event() {
        let r = render(
            NotificationKind::NewMessage,
            &message("John Smith", "Here are the updated contracts"),
            "Acme",
            "https://acme.stackpro.io",
        );
        assert_eq!(r.in_app, "New message from John Smith");
        assert_eq!(r.email_subject, "New message in Acme portal");
        assert_eq!(
            (r.push_title.as_str(), r.push_body.as_str()),
            ("John Smith", "Here are the updated contracts")
        );
        let shared = NotificationData {
            sender_name: Some("Olga".into()),
            file_name: Some("contract.pdf".into()),
            ..Default::default()
        };
        let r = render(NotificationKind::FileShared, &shared, "Acme", "https://x");
        assert_eq!(r.in_app, "Olga shared contract.pdf with you");
        assert_eq!(r.email_subject, "File shared: contract.pdf");
        assert!(r.email_text.contains("Olga shared contract.pdf with you"));
    }

    #[test]
    fn user_text_is_escaped_in_html_and_kept_plain_in_text() {
        let hostile = message(
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)> & \"quotes\"",
        );
        let mail = email(
            &[(NotificationKind::NewMessage, hostile)],
            "Acme & Co",
            "https://a/?x=1&y=\"2\"",
            "https://a/unsub?t=1&u=2",
        );
        assert!(
            !mail.html.contains("<script>") && !mail.html.contains("<img"),
            "{}",
            mail.html
        );
        assert!(mail
            .html
            .contains("&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quotes&quot;"));
        assert!(mail.html.contains("href=\"https://a/unsub?t=1&amp;u=2\""));
        assert!(mail
            .text
            .contains("<img src=x onerror=alert(1)> & \"quotes\""));
        assert!(mail
            .text
            .contains("Turn off these emails: https://a/unsub?t=1&u=2"));
    }

    #[test]
    fn several_notifications_make_one_digest() {
        let items: Vec<_> = (1..=3)
            .map(|i| {
                (
                    NotificationKind::NewMessage,
                    message("Bob", &format!("message {i}")),
                )
            })
            .collect();
        let mail = email(&items, "Acme", "https://p", "https://u");
        assert_eq!(mail.subject, "3 new notifications in Acme portal");
        for i in 1..=3 {
            assert!(mail
                .text
                .contains(&format!("Bob in Contracts: message {i}")));
        }
        let single = email(&items[..1], "Acme", "https://p", "https://u");
        assert_eq!(single.subject, "New message in Acme portal");
    }

    #[test]
    fn previews_are_one_line_and_bounded() {
        let long = "word ".repeat(100);
        let p = preview(&long);
        assert_eq!(p.chars().count(), PREVIEW_CHARS);
        assert!(p.ends_with('…'));
        assert_eq!(preview("a\n\n  b"), "a b");
    }
}
