//! Signed opaque tokens, bound to the tenant, user and purpose they were issued for: page
//! cursors (where the next page starts) and unsubscribe links (whose email to turn off).
//!
//! A token is `base64url(payload) "." base64url(HMAC-SHA256(payload))[..16 bytes]`. The
//! payload names the tenant, the user and the *scope* (which conversation's history, which
//! search) it was issued for, so a cursor changed by a single bit, or replayed by another user,
//! for another conversation or another tenant, is refused with `INVALID_CURSOR` before any
//! read. The position inside is never trusted for access: every page re-checks membership.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, ProtocolError};
use crate::ids::{TenantId, UserId};

/// Bytes of the HMAC tag kept in a cursor (128 bits).
const TAG_BYTES: usize = 16;
/// Longest cursor accepted (a cursor we issue is far shorter).
pub const MAX_CURSOR_CHARS: usize = 1024;

/// Signs and opens cursors and links with one secret (the `CURSOR_SECRET` of the functions).
#[derive(Clone)]
pub struct Signer {
    key: hmac::Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(<secret>)")
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    t: String,
    u: String,
    s: String,
    p: String,
}

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// A cursor for `position` inside `scope`, usable by `user` of `tenant` only.
    pub fn issue(&self, tenant: &TenantId, user: &UserId, scope: &str, position: &str) -> String {
        let payload = Payload {
            t: tenant.to_string(),
            u: user.to_string(),
            s: scope.to_owned(),
            p: position.to_owned(),
        };
        // Four strings always serialise.
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        let tag = hmac::sign(&self.key, &json);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(&tag.as_ref()[..TAG_BYTES])
        )
    }

    /// The position inside `cursor`, if this signer issued it for exactly this tenant, user
    /// and scope.
    pub fn open(
        &self,
        cursor: &str,
        tenant: &TenantId,
        user: &UserId,
        scope: &str,
    ) -> Result<String, ProtocolError> {
        let invalid = |why: &str| {
            ProtocolError::new(
                ErrorCode::InvalidCursor,
                format!("cursor refused: {why}; start again without a cursor"),
            )
        };
        if cursor.len() > MAX_CURSOR_CHARS {
            return Err(invalid("it is too long"));
        }
        let (body, tag) = cursor
            .split_once('.')
            .ok_or_else(|| invalid("it is not a cursor we issued"))?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| invalid("it is not a cursor we issued"))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| invalid("it is not a cursor we issued"))?;
        let expected = hmac::sign(&self.key, &json);
        if tag.len() != TAG_BYTES || !constant_time_eq(&expected.as_ref()[..TAG_BYTES], &tag) {
            return Err(invalid("it was altered or issued by another deployment"));
        }
        let payload: Payload =
            serde_json::from_slice(&json).map_err(|_| invalid("it is not a cursor we issued"))?;
        if payload.t != tenant.as_str() || payload.u != user.as_str() || payload.s != scope {
            return Err(invalid("it was issued for another request"));
        }
        Ok(payload.p)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(t: &str, u: &str) -> (TenantId, UserId) {
        (TenantId::parse(t).unwrap(), UserId::parse(u).unwrap())
    }

    #[test]
    fn a_cursor_opens_for_its_own_request_only() {
        let signer = Signer::new(b"a test secret of enough length!!");
        let (t, u) = ids("acme", "alice");
        let cursor = signer.issue(&t, &u, "history:general", "000000000042");
        assert_eq!(
            signer.open(&cursor, &t, &u, "history:general").unwrap(),
            "000000000042"
        );
        let (other_tenant, bob) = ids("globex", "bob");
        for (tenant, user, scope) in [
            (&other_tenant, &u, "history:general"),
            (&t, &bob, "history:general"),
            (&t, &u, "history:project-x"),
        ] {
            let err = signer.open(&cursor, tenant, user, scope).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidCursor);
        }
        let other_deployment = Signer::new(b"another secret, another stack...");
        assert_eq!(
            other_deployment
                .open(&cursor, &t, &u, "history:general")
                .unwrap_err()
                .code,
            ErrorCode::InvalidCursor
        );
    }

    #[test]
    fn every_single_character_change_is_refused() {
        let signer = Signer::new(b"secret");
        let (t, u) = ids("acme", "alice");
        let cursor = signer.issue(&t, &u, "s", "5");
        for i in 0..cursor.len() {
            let mut bytes = cursor.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered == cursor {
                continue;
            }
            assert!(signer.open(&tampered, &t, &u, "s").is_err(), "{tampered}");
        }
        for junk in ["", ".", "abc", "a.b.c", &"x".repeat(5000)] {
            assert!(signer.open(junk, &t, &u, "s").is_err());
        }
    }
}
