//! Development tokens for the local stack. The deployed stack never mints: its tokens come
//! from the identity provider and are checked against `JwtVerificationKey`.

use messaging_core::token::{Contacts, DevTokenIssuer, TokenConfigError, TokenVerifier};
use messaging_core::Principal;

/// The local stack's HS256 secret. It exists only on developer machines and in tests;
/// template.yaml has no default for the deployed key.
pub const LOCAL_SECRET: &str = "stackpro-local-development-secret-not-for-production";
pub const LOCAL_ISSUER: &str = "https://auth.stackpro.local";
pub const LOCAL_AUDIENCE: &str = "stackpro-messaging";

pub fn local_issuer() -> Result<DevTokenIssuer, TokenConfigError> {
    DevTokenIssuer::hs256(LOCAL_SECRET.as_bytes(), LOCAL_ISSUER, LOCAL_AUDIENCE)
}

pub fn local_verifier() -> Result<TokenVerifier, TokenConfigError> {
    TokenVerifier::hs256(LOCAL_SECRET.as_bytes(), LOCAL_ISSUER, LOCAL_AUDIENCE)
}

/// A local token for `principal`, valid for `ttl_seconds` from now.
pub fn mint_local(principal: &Principal, ttl_seconds: u64) -> Result<String, TokenConfigError> {
    mint_local_with(principal, &Contacts::default(), ttl_seconds)
}

/// [`mint_local`] carrying `contacts` as verified claims, as an identity provider would.
pub fn mint_local_with(
    principal: &Principal,
    contacts: &Contacts,
    ttl_seconds: u64,
) -> Result<String, TokenConfigError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    Ok(local_issuer()?.mint_with_contacts(principal, contacts, now, ttl_seconds))
}

/// The verified email the local identity provider gives a user who names none:
/// `{user}@{tenant}.stackpro.local` (moto's SES keeps what is sent to it).
pub fn local_email(principal: &Principal) -> String {
    format!("{}@{}.stackpro.local", principal.user, principal.tenant)
}

/// The page-cursor secret of the local stack (the local `SigningSecret`).
pub const LOCAL_CURSOR_SECRET: &str = "stackpro-local-cursor-secret-not-for-production";

/// The cursor signer every local function uses.
pub fn local_cursor_signer() -> messaging_core::signed::Signer {
    messaging_core::signed::Signer::new(LOCAL_CURSOR_SECRET.as_bytes())
}
