//! Access tokens: verification (production and development) and minting (development only).
//!
//! A token is a JWT whose claims carry the user (`sub`), the tenant (`clientId`) and the role.
//! Verification always pins the algorithm family to the configured key, so a token cannot
//! choose its own algorithm (`alg: none`, or HS256 signed with a public key, are refused).

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::access::Principal;
use crate::ids::{TenantId, UserId};
use crate::role::Role;

/// Smallest HS256 secret accepted (RFC 7518 §3.2: at least the hash size).
pub const MIN_HS256_SECRET_BYTES: usize = 32;
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

/// The claims StackPro tokens carry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    pub sub: String,
    pub client_id: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    pub iss: String,
    /// One audience, or several (RFC 7519 §4.1.3): ours must be among them.
    pub aud: Audience,
    /// OpenID Connect's verified contact claims: notifications go only to an address or number
    /// the identity provider verified, never to one a client typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(
        default,
        rename = "email_verified",
        skip_serializing_if = "Option::is_none"
    )]
    pub email_verified: Option<bool>,
    #[serde(
        default,
        rename = "phone_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub phone_number: Option<String>,
    #[serde(
        default,
        rename = "phone_number_verified",
        skip_serializing_if = "Option::is_none"
    )]
    pub phone_number_verified: Option<bool>,
}

/// The `aud` claim: a string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Default for Audience {
    fn default() -> Self {
        Audience::One(String::new())
    }
}

impl From<&str> for Audience {
    fn from(audience: &str) -> Self {
        Audience::One(audience.to_owned())
    }
}

/// Where a user's notifications may go: the contact points their identity provider verified
/// (`email` with `email_verified: true`, `phone_number` with `phone_number_verified: true`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contacts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

impl Contacts {
    /// The verified claims that are well-formed; the others are dropped (a token never fails
    /// for its contact claims: they only decide where notifications may go).
    pub fn from_claims(claims: &Claims) -> Self {
        let verified = |value: &Option<String>, flag: Option<bool>| {
            value.clone().filter(|_| flag == Some(true))
        };
        Self {
            email: verified(&claims.email, claims.email_verified)
                .filter(|e| crate::notify::is_email_address(e)),
            phone: verified(&claims.phone_number, claims.phone_number_verified)
                .filter(|p| crate::notify::is_e164(p)),
        }
    }
}

/// Why a token was refused. Logged with the connection id; the token itself never is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no token was presented")]
    Missing,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's algorithm is not accepted by this deployment")]
    AlgorithmNotAllowed,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token names a signing key (kid) this deployment does not know")]
    UnknownKey,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token was issued by someone else (iss)")]
    WrongIssuer,
    #[error("the token is meant for another audience (aud)")]
    WrongAudience,
    #[error("the token lacks or has an invalid claim: {0}")]
    BadClaim(String),
}

/// Why a verifier could not be configured. Raised at start-up, never per request.
#[derive(Debug, thiserror::Error)]
pub enum TokenConfigError {
    #[error("the HS256 secret is {0} bytes; use at least {MIN_HS256_SECRET_BYTES} random bytes")]
    WeakSecret(usize),
    #[error("the public key is not a valid {algorithm:?} PEM key: {reason}")]
    BadPem {
        algorithm: Algorithm,
        reason: String,
    },
    #[error("algorithm {0:?} is not supported; use RS256 or ES256 with a public key")]
    UnsupportedAlgorithm(String),
    #[error("the JWKS is not valid JSON Web Key Set JSON: {0}")]
    BadJwks(String),
    #[error("the JWKS holds no RS256 or ES256 signing key")]
    EmptyJwks,
    #[error("issuer and audience must both be set")]
    MissingIssuerOrAudience,
}

#[derive(Clone)]
struct VerificationKey {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Verifies access tokens against one configured key source.
#[derive(Clone)]
pub struct TokenVerifier {
    keys: Vec<VerificationKey>,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("TokenVerifier")
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|k| (&k.kid, k.algorithm))
                    .collect::<Vec<_>>(),
            )
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

impl TokenVerifier {
    /// Development: a shared HS256 secret.
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Result<Self, TokenConfigError> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(TokenConfigError::WeakSecret(secret.len()));
        }
        let key = VerificationKey {
            kid: None,
            algorithm: Algorithm::HS256,
            key: DecodingKey::from_secret(secret),
        };
        Self::new(vec![key], issuer, audience)
    }

    /// Production: an RS256 or ES256 public key in PEM form.
    pub fn public_key_pem(
        algorithm: &str,
        pem: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, TokenConfigError> {
        let (algorithm, key) = match algorithm {
            "RS256" => (Algorithm::RS256, DecodingKey::from_rsa_pem(pem.as_bytes())),
            "ES256" => (Algorithm::ES256, DecodingKey::from_ec_pem(pem.as_bytes())),
            other => return Err(TokenConfigError::UnsupportedAlgorithm(other.to_owned())),
        };
        let key = key.map_err(|e| TokenConfigError::BadPem {
            algorithm,
            reason: e.to_string(),
        })?;
        Self::new(
            vec![VerificationKey {
                kid: None,
                algorithm,
                key,
            }],
            issuer,
            audience,
        )
    }

    /// Production: a JSON Web Key Set (e.g. an identity provider's `jwks.json`). Keys are
    /// chosen by the token's `kid`; only RS256 and ES256 signing keys are kept.
    pub fn jwks(jwks_json: &str, issuer: &str, audience: &str) -> Result<Self, TokenConfigError> {
        let set: JwkSet = serde_json::from_str(jwks_json)
            .map_err(|e| TokenConfigError::BadJwks(e.to_string()))?;
        let keys: Vec<VerificationKey> = set.keys.iter().filter_map(jwk_key).collect();
        if keys.is_empty() {
            return Err(TokenConfigError::EmptyJwks);
        }
        Self::new(keys, issuer, audience)
    }

    fn new(
        keys: Vec<VerificationKey>,
        issuer: &str,
        audience: &str,
    ) -> Result<Self, TokenConfigError> {
        if issuer.is_empty() || audience.is_empty() {
            return Err(TokenConfigError::MissingIssuerOrAudience);
        }
        Ok(Self {
            keys,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// Verifies signature, `exp`, `nbf`, `iss`, `aud`, and turns the claims into a principal.
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        self.verify_with_contacts(token)
            .map(|(principal, _)| principal)
    }

    /// [`Self::verify`], and the verified contact points the token carries.
    pub fn verify_with_contacts(&self, token: &str) -> Result<(Principal, Contacts), TokenError> {
        if token.is_empty() {
            return Err(TokenError::Missing);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            // `alg: none` (and any unknown name) does not even parse into an Algorithm.
            ErrorKind::Json(_) | ErrorKind::InvalidAlgorithmName => TokenError::AlgorithmNotAllowed,
            _ => TokenError::Malformed,
        })?;
        let key = self.select_key(&header)?;
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECONDS;
        let data =
            jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(map_error)?;
        let contacts = Contacts::from_claims(&data.claims);
        Ok((principal_from(data.claims)?, contacts))
    }

    fn select_key(&self, header: &Header) -> Result<&VerificationKey, TokenError> {
        let mut candidates = self.keys.iter().filter(|k| k.algorithm == header.alg);
        match &header.kid {
            Some(kid) if self.keys.iter().any(|k| k.kid.is_some()) => candidates
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or(if self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) {
                    TokenError::AlgorithmNotAllowed
                } else {
                    TokenError::UnknownKey
                }),
            _ => candidates.next().ok_or(TokenError::AlgorithmNotAllowed),
        }
    }
}

fn jwk_key(jwk: &Jwk) -> Option<VerificationKey> {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, PublicKeyUse};
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return None;
    }
    let algorithm = match (&jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(KeyAlgorithm::RS256), _) => Algorithm::RS256,
        (Some(KeyAlgorithm::ES256), _) => Algorithm::ES256,
        (Some(_), _) => return None,
        // `alg` is optional in a JWK (RFC 7517 §4.4): the key type decides.
        (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
        (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        (None, _) => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerificationKey {
        kid: jwk.common.key_id.clone(),
        algorithm,
        key,
    })
}

fn map_error(error: jsonwebtoken::errors::Error) -> TokenError {
    match error.into_kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            TokenError::AlgorithmNotAllowed
        }
        ErrorKind::MissingRequiredClaim(claim) => TokenError::BadClaim(format!("missing {claim}")),
        ErrorKind::InvalidClaimFormat(claim) => {
            TokenError::BadClaim(format!("bad format of {claim}"))
        }
        ErrorKind::Json(e) => TokenError::BadClaim(e.to_string()),
        _ => TokenError::Malformed,
    }
}

fn principal_from(claims: Claims) -> Result<Principal, TokenError> {
    let bad = |e: &dyn std::fmt::Display| TokenError::BadClaim(e.to_string());
    let user = UserId::parse(claims.sub).map_err(|e| bad(&e))?;
    if user.is_reserved() {
        return Err(bad(&format!(
            "sub \"{user}\" is reserved for the server's own entries (ids starting \"stackpro.\")"
        )));
    }
    Ok(Principal {
        tenant: TenantId::parse(claims.client_id).map_err(|e| bad(&e))?,
        user,
        role: claims.role.parse::<Role>().map_err(|e| bad(&e))?,
        name: claims
            .name
            .filter(|n| !n.trim().is_empty())
            .map(|n| n.chars().take(100).collect()),
    })
}

/// Mints HS256 tokens for development and tests. Production tokens come from the identity
/// provider; nothing in the deployed functions mints.
pub struct DevTokenIssuer {
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl DevTokenIssuer {
    pub fn hs256(secret: &[u8], issuer: &str, audience: &str) -> Result<Self, TokenConfigError> {
        if secret.len() < MIN_HS256_SECRET_BYTES {
            return Err(TokenConfigError::WeakSecret(secret.len()));
        }
        Ok(Self {
            key: EncodingKey::from_secret(secret),
            issuer: issuer.into(),
            audience: audience.into(),
        })
    }

    /// A token for `principal`, valid from `now` for `ttl_seconds`.
    pub fn mint(&self, principal: &Principal, now_seconds: u64, ttl_seconds: u64) -> String {
        self.mint_with_contacts(principal, &Contacts::default(), now_seconds, ttl_seconds)
    }

    /// [`Self::mint`], carrying these contact points as verified claims.
    pub fn mint_with_contacts(
        &self,
        principal: &Principal,
        contacts: &Contacts,
        now_seconds: u64,
        ttl_seconds: u64,
    ) -> String {
        let claims = Claims {
            sub: principal.user.to_string(),
            client_id: principal.tenant.to_string(),
            role: principal.role.to_string(),
            name: principal.name.clone(),
            exp: now_seconds + ttl_seconds,
            nbf: Some(now_seconds),
            iat: Some(now_seconds),
            iss: self.issuer.clone(),
            aud: Audience::One(self.audience.clone()),
            email: contacts.email.clone(),
            email_verified: contacts.email.as_ref().map(|_| true),
            phone_number: contacts.phone.clone(),
            phone_number_verified: contacts.phone.as_ref().map(|_| true),
        };
        sign(&Header::new(Algorithm::HS256), &claims, &self.key)
    }
}

/// Signs arbitrary claims (tests use it to forge bad tokens).
pub fn sign(header: &Header, claims: &Claims, key: &EncodingKey) -> String {
    // Encoding only fails for a key that does not match the algorithm: a programming error.
    jsonwebtoken::encode(header, claims, key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn principal() -> Principal {
        Principal {
            tenant: TenantId::parse("123").unwrap(),
            user: UserId::parse("alice").unwrap(),
            role: Role::Owner,
            name: Some("Alice".into()),
        }
    }

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "alice".into(),
            client_id: "123".into(),
            role: "OWNER".into(),
            name: None,
            exp,
            nbf: None,
            iat: None,
            iss: "stackpro".into(),
            aud: "messaging".into(),
            ..Default::default()
        }
    }

    fn verifier() -> TokenVerifier {
        TokenVerifier::hs256(SECRET, "stackpro", "messaging").unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn a_minted_token_verifies_to_its_principal() {
        let issuer = DevTokenIssuer::hs256(SECRET, "stackpro", "messaging").unwrap();
        let token = issuer.mint(&principal(), now(), 3600);
        assert_eq!(verifier().verify(&token).unwrap(), principal());
    }

    #[test]
    fn no_token_may_speak_as_the_server() {
        let key = EncodingKey::from_secret(SECRET);
        let mut forged = claims(now() + 60);
        forged.sub = UserId::SYSTEM.into();
        let token = sign(&Header::new(Algorithm::HS256), &forged, &key);
        match verifier().verify(&token) {
            Err(TokenError::BadClaim(why)) => assert!(why.contains("reserved"), "{why}"),
            other => panic!("a token for the system sender was not refused: {other:?}"),
        }
        forged.sub = UserId::ERASED.into();
        let token = sign(&Header::new(Algorithm::HS256), &forged, &key);
        assert!(
            matches!(verifier().verify(&token), Err(TokenError::BadClaim(why)) if why.contains("reserved")),
            "a token for the erased sender was not refused"
        );
    }

    #[test]
    fn refusals_name_their_reason() {
        let key = EncodingKey::from_secret(SECRET);
        let header = Header::new(Algorithm::HS256);
        let v = verifier();
        assert_eq!(v.verify(""), Err(TokenError::Missing));
        assert_eq!(v.verify("abc.def"), Err(TokenError::Malformed));
        assert_eq!(
            v.verify(&sign(&header, &claims(now() - 3600), &key))
                .unwrap_err(),
            TokenError::Expired
        );
        let other = EncodingKey::from_secret(b"another-secret-another-secret-xx");
        assert_eq!(
            v.verify(&sign(&header, &claims(now() + 60), &other)),
            Err(TokenError::BadSignature)
        );
        let mut c = claims(now() + 60);
        c.iss = "evil".into();
        assert_eq!(
            v.verify(&sign(&header, &c, &key)),
            Err(TokenError::WrongIssuer)
        );
        let mut c = claims(now() + 60);
        c.aud = "other-app".into();
        assert_eq!(
            v.verify(&sign(&header, &c, &key)),
            Err(TokenError::WrongAudience)
        );
        let mut c = claims(now() + 600);
        c.nbf = Some(now() + 300);
        assert_eq!(
            v.verify(&sign(&header, &c, &key)),
            Err(TokenError::NotYetValid)
        );
        let mut c = claims(now() + 60);
        c.client_id = "1#2".into();
        assert!(matches!(
            v.verify(&sign(&header, &c, &key)),
            Err(TokenError::BadClaim(_))
        ));
        let mut c = claims(now() + 60);
        c.role = "SUPERUSER".into();
        assert!(matches!(
            v.verify(&sign(&header, &c, &key)),
            Err(TokenError::BadClaim(_))
        ));
    }

    #[test]
    fn alg_none_is_refused() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
        use base64::Engine;
        let header = B64.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let body = B64.encode(serde_json::to_string(&claims(now() + 60)).unwrap());
        assert_eq!(
            verifier().verify(&format!("{header}.{body}.")),
            Err(TokenError::AlgorithmNotAllowed)
        );
    }

    #[test]
    fn weak_secrets_are_refused_at_start_up() {
        assert!(matches!(
            TokenVerifier::hs256(b"short", "i", "a"),
            Err(TokenConfigError::WeakSecret(5))
        ));
    }

    #[test]
    fn an_audience_array_holding_ours_is_accepted() {
        let mut c = claims(now() + 60);
        c.aud = Audience::Many(vec!["other-app".into(), "messaging".into()]);
        let token = sign(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(SECRET),
        );
        assert_eq!(verifier().verify(&token).unwrap().user.as_str(), "alice");
        c.aud = Audience::Many(vec!["other-app".into()]);
        let token = sign(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(SECRET),
        );
        assert_eq!(verifier().verify(&token), Err(TokenError::WrongAudience));
    }

    #[test]
    fn only_verified_well_formed_contacts_are_kept() {
        let mut c = claims(now() + 60);
        c.email = Some("alice@example.com".into());
        c.phone_number = Some("+14155550123".into());
        assert_eq!(
            Contacts::from_claims(&c),
            Contacts::default(),
            "not verified"
        );
        c.email_verified = Some(true);
        c.phone_number_verified = Some(false);
        assert_eq!(
            Contacts::from_claims(&c).email.as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(Contacts::from_claims(&c).phone, None);
        c.email = Some("not an address".into());
        assert_eq!(Contacts::from_claims(&c).email, None);
        let issuer = DevTokenIssuer::hs256(SECRET, "stackpro", "messaging").unwrap();
        let contacts = Contacts {
            email: Some("alice@example.com".into()),
            phone: Some("+14155550123".into()),
        };
        let token = issuer.mint_with_contacts(&principal(), &contacts, now(), 60);
        assert_eq!(verifier().verify_with_contacts(&token).unwrap().1, contacts);
    }

    #[test]
    fn jwks_keys_without_alg_are_typed_by_their_key() {
        // An RSA key with no `alg` (RFC 7517 makes it optional) verifies RS256 tokens.
        let jwks = r#"{"keys":[{"kty":"RSA","kid":"k1","use":"sig","n":"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw","e":"AQAB"}]}"#;
        let verifier = TokenVerifier::jwks(jwks, "stackpro", "messaging").unwrap();
        assert_eq!(verifier.keys.len(), 1);
        assert_eq!(verifier.keys[0].algorithm, Algorithm::RS256);
        // An encryption key is never a verification key.
        let enc = jwks.replace(r#""use":"sig""#, r#""use":"enc""#);
        assert!(TokenVerifier::jwks(&enc, "stackpro", "messaging").is_err());
    }
}
