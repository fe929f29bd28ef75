//! Notifications: what a user hears about while away, on which channels, and when not.
//!
//! Pure rules only: the pipeline (broadcast queues pending notifications, `notify-batch`
//! settles them) lives in the handlers.

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, ProtocolError};

/// Why a user is notified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationKind {
    /// A message in one of their conversations while they were offline.
    NewMessage,
    /// They were @mentioned.
    Mention,
    /// A file was shared with them.
    FileShared,
    /// Someone commented on their file.
    FileComment,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::NewMessage => "NEW_MESSAGE",
            NotificationKind::Mention => "MENTION",
            NotificationKind::FileShared => "FILE_SHARED",
            NotificationKind::FileComment => "FILE_COMMENT",
        }
    }
}

/// Where a notification goes besides the in-app list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    Email,
    Push,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "EMAIL",
            Channel::Push => "PUSH",
            Channel::Sms => "SMS",
        }
    }
}

/// Where a notification is in its life: pending until the batch settles it (or pushed live at
/// once to an open socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationStatus {
    /// Waiting for the batch: email, push and SMS as the user's preferences say.
    Pending,
    /// Pushed to the user's open socket when it was written; never sent elsewhere.
    Live,
    /// Sent on every channel the user had on.
    Sent,
    /// Read before the batch came to it: not worth a message.
    Suppressed,
    /// No channel on (or no address): in the in-app list only.
    InAppOnly,
}

/// Quiet hours: a daily span in the user's local time (`start` may be after `end`: overnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuietHours {
    /// Minutes after local midnight, 0–1439.
    pub start_minute: u16,
    pub end_minute: u16,
    /// The user's offset from UTC in minutes (e.g. 60 for CET, -300 for EST).
    pub utc_offset_minutes: i16,
}

impl QuietHours {
    /// Whether `epoch_millis` falls inside the quiet span.
    pub fn contains(&self, epoch_millis: i64) -> bool {
        let local_minutes = (epoch_millis.div_euclid(60_000) + i64::from(self.utc_offset_minutes))
            .rem_euclid(24 * 60);
        let (start, end) = (i64::from(self.start_minute), i64::from(self.end_minute));
        if start <= end {
            (start..end).contains(&local_minutes)
        } else {
            local_minutes >= start || local_minutes < end
        }
    }

    /// Epoch ms at which the quiet span containing `epoch_millis` ends.
    pub fn ends_after(&self, epoch_millis: i64) -> i64 {
        let mut t = epoch_millis - epoch_millis.rem_euclid(60_000) + 60_000;
        while self.contains(t) {
            t += 60_000;
        }
        t
    }
}

/// A user's notification preferences (read and changed with GET_PREFERENCES /
/// SET_PREFERENCES). Email is on by default; push and SMS need a target first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    #[serde(default = "yes")]
    pub in_app: bool,
    #[serde(default = "yes")]
    pub email: bool,
    #[serde(default)]
    pub push: bool,
    #[serde(default)]
    pub sms: bool,
    /// Where email goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_address: Option<String>,
    /// E.164 phone number for SMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// The SNS platform endpoint of the user's device, for push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
}

fn yes() -> bool {
    true
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            in_app: true,
            email: true,
            push: false,
            sms: false,
            email_address: None,
            phone_number: None,
            push_endpoint: None,
            quiet_hours: None,
        }
    }
}

impl Preferences {
    /// Checks what a client sent: switches, hours that exist, a push endpoint that is one.
    /// Addresses are not the client's to set: email and SMS go to the contact points the
    /// identity provider verified ([`crate::token::Contacts`]), shown back by GET_PREFERENCES.
    pub fn validate(self) -> Result<Self, ProtocolError> {
        let invalid = |m: &str| ProtocolError::new(ErrorCode::InvalidField, m.to_owned());
        if self.email_address.is_some() || self.phone_number.is_some() {
            return Err(invalid(
                "emailAddress and phoneNumber cannot be set: notifications go to the email and phone number your identity provider verified (the token's email and phone_number claims)",
            ));
        }
        if let Some(q) = &self.quiet_hours {
            if q.start_minute >= 1440
                || q.end_minute >= 1440
                || q.utc_offset_minutes.abs() > 14 * 60
            {
                return Err(invalid(
                    "quietHours needs startMinute and endMinute 0-1439 and utcOffsetMinutes within ±840",
                ));
            }
        }
        match &self.push_endpoint {
            Some(endpoint) if !is_push_endpoint_arn(endpoint) => {
                return Err(invalid(
                    "pushEndpoint must be the ARN of your device's SNS platform endpoint (arn:aws:sns:{region}:{account}:endpoint/{platform}/{application}/{id})",
                ))
            }
            None if self.push => return Err(invalid("push needs a pushEndpoint")),
            _ => {}
        }
        Ok(self)
    }

    /// The channels this user gets notifications on: switched on, and with a verified contact
    /// point (or a push endpoint) to send to.
    pub fn channels(&self, contacts: &crate::token::Contacts) -> Vec<Channel> {
        let mut channels = Vec::new();
        if self.email && contacts.email.is_some() {
            channels.push(Channel::Email);
        }
        if self.push && self.push_endpoint.is_some() {
            channels.push(Channel::Push);
        }
        if self.sms && contacts.phone.is_some() {
            channels.push(Channel::Sms);
        }
        channels
    }

    /// These preferences as GET_PREFERENCES shows them: with the verified addresses in use.
    pub fn with_contacts(mut self, contacts: &crate::token::Contacts) -> Self {
        self.email_address = contacts.email.clone();
        self.phone_number = contacts.phone.clone();
        self
    }

    /// Whether quiet hours hold email, push and SMS back at `epoch_millis` (in-app is never
    /// held: it waits in the list anyway).
    pub fn is_quiet(&self, epoch_millis: i64) -> bool {
        self.quiet_hours.is_some_and(|q| q.contains(epoch_millis))
    }
}

/// Whether `address` looks like a deliverable email address (one `@`, a dotted domain, no
/// spaces, controls or angle brackets, at most 254 characters).
pub fn is_email_address(address: &str) -> bool {
    address.len() <= 254
        && !address
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        && address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        })
}

/// Whether `phone` is an E.164 number (`+` and 8 to 15 digits).
pub fn is_e164(phone: &str) -> bool {
    let digits = phone.strip_prefix('+').unwrap_or("");
    (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `arn` is an SNS platform endpoint ARN
/// (`arn:{partition}:sns:{region}:{account}:endpoint/{platform}/{application}/{id}`), never a
/// topic or anything else `Publish` could reach.
pub fn is_push_endpoint_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, partition, service, region, account, resource] = parts[..] else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 256
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    let path: Vec<&str> = resource.split('/').collect();
    scheme == "arn"
        && matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        && service == "sns"
        && token(region)
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && path.len() == 4
        && path[0] == "endpoint"
        && path[1..].iter().all(|p| token(p))
}

/// Every `@name` a text contains (at most 20, distinct).
/// Most @names of one message that count (the rest notify nobody).
pub const MAX_MENTIONS: usize = 20;

pub fn mentioned_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in text
        .split('@')
        .skip(1)
        .map(|rest| {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
                .unwrap_or(rest.len());
            rest[..end].trim_end_matches('.')
        })
        .filter(|n| !n.is_empty())
    {
        if names.len() == MAX_MENTIONS {
            break;
        }
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

/// The users a message @mentions, among `members` (`@alice`, case-sensitive ids).
pub fn mentions<'a>(text: &str, members: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let named = mentioned_names(text);
    let mut found: Vec<String> = members
        .into_iter()
        .filter(|m| named.iter().any(|n| n == m))
        .map(str::to_owned)
        .collect();
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_need_both_the_switch_and_a_verified_contact() {
        use crate::token::Contacts;
        let mut p = Preferences::default();
        let mut c = Contacts::default();
        assert!(
            p.channels(&c).is_empty(),
            "email on but no verified address"
        );
        c.email = Some("bob@example.com".into());
        p.push = true;
        assert_eq!(p.channels(&c), [Channel::Email]);
        p.push_endpoint = Some("arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1".into());
        p.sms = true;
        assert_eq!(p.channels(&c), [Channel::Email, Channel::Push]);
        c.phone = Some("+14155550123".into());
        assert_eq!(
            p.channels(&c),
            [Channel::Email, Channel::Push, Channel::Sms]
        );
        p.email = false;
        assert_eq!(p.channels(&c), [Channel::Push, Channel::Sms]);
        // An address a client once stored is never used.
        p.email = true;
        p.email_address = Some("victim@example.com".into());
        c.email = None;
        assert_eq!(p.channels(&c), [Channel::Push, Channel::Sms]);
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn quiet_hours_span_midnight_in_local_time() {
        // 22:00–07:00 at UTC+1.
        let q = QuietHours {
            start_minute: 22 * 60,
            end_minute: 7 * 60,
            utc_offset_minutes: 60,
        };
        let day = 20_000 * 24 * HOUR; // a UTC midnight
        assert!(q.contains(day + 21 * HOUR + 30 * 60_000), "22:30 local");
        assert!(q.contains(day + 3 * HOUR), "04:00 local");
        assert!(!q.contains(day + 6 * HOUR), "07:00 local: over");
        assert!(!q.contains(day + 12 * HOUR), "13:00 local");
        assert_eq!(q.ends_after(day + 3 * HOUR), day + 6 * HOUR);
        let office = QuietHours {
            start_minute: 9 * 60,
            end_minute: 17 * 60,
            utc_offset_minutes: -300,
        };
        assert!(office.contains(day + 15 * HOUR), "10:00 EST");
        assert!(!office.contains(day + 23 * HOUR), "18:00 EST");
    }

    #[test]
    fn preferences_default_to_in_app_and_email_and_are_validated() {
        let p: Preferences = serde_json::from_str("{}").unwrap();
        assert_eq!(p, Preferences::default());
        assert!(p.in_app && p.email && !p.push && !p.sms);
        let bad = |json: &str| {
            serde_json::from_str::<Preferences>(json)
                .unwrap()
                .validate()
                .is_err()
        };
        assert!(bad(
            r#"{"quietHours":{"startMinute":1500,"endMinute":0,"utcOffsetMinutes":0}}"#
        ));
        assert!(bad(r#"{"push":true}"#));
        assert!(!bad(r#"{"sms":true,"email":false}"#));
        assert!(!bad(
            r#"{"push":true,"pushEndpoint":"arn:aws:sns:eu-west-1:123456789012:endpoint/APNS/portal/5e3a-11"}"#
        ));
    }

    #[test]
    fn addresses_are_not_the_clients_to_set_and_push_reaches_only_an_endpoint() {
        let refused = |json: &str| {
            serde_json::from_str::<Preferences>(json)
                .unwrap()
                .validate()
                .unwrap_err()
                .code
        };
        // Any inbox or phone: refused (they come from the identity provider's verified claims).
        assert_eq!(
            refused(r#"{"emailAddress":"victim@example.com"}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            refused(r#"{"sms":true,"phoneNumber":"+14155550123"}"#),
            ErrorCode::InvalidField
        );
        // Publish must never reach a topic, another account, or another service.
        for arn in [
            "arn:aws:sns:us-east-1:123456789012:alerts",
            "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app",
            "arn:aws:sns:us-east-1:12345678901:endpoint/GCM/app/1",
            "arn:aws:sqs:us-east-1:123456789012:endpoint/GCM/app/1",
            "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1/extra",
            "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1?x",
            "+14155550123",
        ] {
            let json = format!(r#"{{"push":true,"pushEndpoint":"{arn}"}}"#);
            assert_eq!(refused(&json), ErrorCode::InvalidField, "{arn}");
        }
        assert!(is_email_address("a.b@example.co.uk"));
        assert!(!is_email_address("a@b@example.com") && !is_email_address("<a@x.com>"));
        assert!(is_e164("+14155550123") && !is_e164("14155550123"));
    }

    #[test]
    fn mentions_name_members_only() {
        let members = ["alice", "bob", "carol.x"];
        assert_eq!(
            mentions("hi @bob and @carol.x. and @mallory", members),
            ["bob", "carol.x"]
        );
        assert_eq!(
            mentions("mail me at bob@example.com", members),
            Vec::<String>::new()
        );
        assert_eq!(mentions("@alice @alice!", members), ["alice"]);
    }
}
