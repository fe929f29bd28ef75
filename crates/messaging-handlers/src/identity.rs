//! Access-token verification as the functions do it: against a configured key (a PEM public
//! key, a JWKS document, or the HS256 development secret), or against the identity provider's
//! JWKS URL. From a URL the key set is fetched at start-up and fetched again when a token names
//! a key not seen yet (the provider rotated its keys: no outage, no redeploy) or when the set is
//! an hour old (a key the provider withdrew stops being accepted).
//!
//! Tokens with invented `kid`s cannot make a function hammer the provider: an unknown key
//! refetches at most every [`MIN_REFETCH`], one fetch at a time, each bounded in time and size.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use messaging_core::token::{Contacts, TokenError, TokenVerifier};
use messaging_core::Principal;
use tokio::time::Instant;
use tracing::{info, warn};

/// A key set this old is fetched again before it verifies a token.
pub const REFRESH_AFTER: Duration = Duration::from_secs(3600);
/// An unknown `kid` fetches the set again at most this often.
pub const MIN_REFETCH: Duration = Duration::from_secs(30);
/// One fetch: connect, headers and body.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest key set read (providers publish a few keys, a few KB).
pub const MAX_JWKS_BYTES: usize = 64 * 1024;

/// When a key set from a URL is fetched again.
#[derive(Debug, Clone, Copy)]
pub struct Refetch {
    /// A set this old is fetched again before it verifies a token.
    pub refresh_after: Duration,
    /// An unknown `kid` fetches again at most this often.
    pub min_interval: Duration,
}

impl Default for Refetch {
    fn default() -> Self {
        Self {
            refresh_after: REFRESH_AFTER,
            min_interval: MIN_REFETCH,
        }
    }
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// Verifies access tokens; cheap to clone (clones share the key set).
#[derive(Clone)]
pub struct Verifier(Arc<Inner>);

struct Inner {
    keys: RwLock<TokenVerifier>,
    remote: Option<Remote>,
}

struct Remote {
    url: hyper::Uri,
    issuer: String,
    audience: String,
    client: HttpsClient,
    refetch: Refetch,
    /// Held while fetching.
    fetches: tokio::sync::Mutex<Fetches>,
}

struct Fetches {
    /// The last fetch, whatever its outcome.
    attempted: Instant,
    /// The last fetch that brought a usable set.
    succeeded: Instant,
}

impl Fetches {
    /// Whether a fetch is due now (`unknown_key`: a token named a key not in the set).
    fn due(&self, refetch: Refetch, unknown_key: bool) -> bool {
        self.attempted.elapsed() >= refetch.min_interval
            && (unknown_key || self.succeeded.elapsed() >= refetch.refresh_after)
    }
}

/// Why a JWKS URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("the JWKS URL {0:?} must be https:// (http:// only on a loopback address)")]
    Insecure(String),
    #[error("the JWKS URL is not a URL: {0}")]
    BadUrl(String),
    #[error("the JWKS could not be fetched from {url}: {reason}")]
    Fetch { url: String, reason: String },
}

impl From<TokenVerifier> for Verifier {
    fn from(keys: TokenVerifier) -> Self {
        Self(Arc::new(Inner {
            keys: RwLock::new(keys),
            remote: None,
        }))
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field(
                "keys",
                &*self.0.keys.read().unwrap_or_else(|e| e.into_inner()),
            )
            .field("url", &self.0.remote.as_ref().map(|r| r.url.to_string()))
            .finish()
    }
}

impl Verifier {
    /// Keys from the identity provider's JWKS URL, fetched now: a URL that does not answer
    /// with a usable key set fails the function's start, where it is seen at once.
    pub async fn from_jwks_url(url: &str, issuer: &str, audience: &str) -> Result<Self, JwksError> {
        Self::from_jwks_url_with(url, issuer, audience, Refetch::default()).await
    }

    /// [`Self::from_jwks_url`] with its own refetch intervals.
    pub async fn from_jwks_url_with(
        url: &str,
        issuer: &str,
        audience: &str,
        refetch: Refetch,
    ) -> Result<Self, JwksError> {
        let uri: hyper::Uri = url.parse().map_err(|e| JwksError::BadUrl(format!("{e}")))?;
        let loopback = matches!(
            uri.host(),
            Some("127.0.0.1" | "localhost" | "[::1]" | "::1")
        );
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if loopback => {}
            _ => return Err(JwksError::Insecure(url.to_owned())),
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| JwksError::Fetch {
                url: url.to_owned(),
                reason: format!("no root certificates: {e}"),
            })?
            .https_or_http()
            .enable_http1()
            .build();
        let remote = Remote {
            url: uri,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            refetch,
            fetches: tokio::sync::Mutex::new(Fetches {
                attempted: Instant::now(),
                succeeded: Instant::now(),
            }),
        };
        let keys = remote.fetch().await.map_err(|reason| JwksError::Fetch {
            url: url.to_owned(),
            reason,
        })?;
        Ok(Self(Arc::new(Inner {
            keys: RwLock::new(keys),
            remote: Some(remote),
        })))
    }

    /// [`TokenVerifier::verify`], with the key set refreshed first when needed.
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        self.verify_with_contacts(token).await.map(|(p, _)| p)
    }

    /// [`TokenVerifier::verify_with_contacts`], with the key set refreshed first when needed.
    pub async fn verify_with_contacts(
        &self,
        token: &str,
    ) -> Result<(Principal, Contacts), TokenError> {
        let first = self.with_keys(token);
        let Some(remote) = &self.0.remote else {
            return first;
        };
        let unknown_key = matches!(first, Err(TokenError::UnknownKey));
        if !unknown_key && !remote.is_stale().await {
            return first;
        }
        if remote.refresh(&self.0.keys, unknown_key).await {
            self.with_keys(token)
        } else {
            first
        }
    }

    fn with_keys(&self, token: &str) -> Result<(Principal, Contacts), TokenError> {
        self.0
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .verify_with_contacts(token)
    }
}

impl Remote {
    async fn is_stale(&self) -> bool {
        // Busy (another request is fetching): not stale for this one.
        self.fetches
            .try_lock()
            .is_ok_and(|f| f.due(self.refetch, false))
    }

    /// Fetches the set again when it is due (`unknown_key`: a token named a key not in it);
    /// whether the keys may have changed.
    async fn refresh(&self, keys: &RwLock<TokenVerifier>, unknown_key: bool) -> bool {
        let waited_from = Instant::now();
        let mut fetches = if unknown_key {
            self.fetches.lock().await
        } else {
            match self.fetches.try_lock() {
                Ok(guard) => guard,
                Err(_) => return false,
            }
        };
        if fetches.attempted > waited_from {
            // Someone fetched while this request waited: verify against what they got.
            return true;
        }
        if !fetches.due(self.refetch, unknown_key) {
            return false;
        }
        fetches.attempted = Instant::now();
        match self.fetch().await {
            Ok(set) => {
                info!(url = %self.url, "token signing keys fetched again");
                *keys.write().unwrap_or_else(|e| e.into_inner()) = set;
                fetches.succeeded = Instant::now();
                fetches.attempted = fetches.succeeded;
                true
            }
            Err(reason) => {
                // Keep the keys we have; the next attempt waits MIN_REFETCH.
                warn!(url = %self.url, %reason, "token signing keys not refreshed; the current ones stay");
                fetches.attempted = Instant::now();
                false
            }
        }
    }

    async fn fetch(&self) -> Result<TokenVerifier, String> {
        let request = hyper::Request::get(self.url.clone())
            .header(hyper::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let read = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("request failed: {e}"))?;
            if response.status() != hyper::StatusCode::OK {
                return Err(format!("answered {}", response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(|e| format!("body unreadable or over {MAX_JWKS_BYTES} bytes: {e}"))?
                .to_bytes();
            String::from_utf8(body.to_vec()).map_err(|_| "body is not UTF-8".to_owned())
        };
        let text = tokio::time::timeout(FETCH_TIMEOUT, read)
            .await
            .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))??;
        TokenVerifier::jwks(&text, &self.issuer, &self.audience).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_jwks_url_must_be_https_except_on_loopback() {
        for url in [
            "http://idp.example/.well-known/jwks.json",
            "ftp://idp.example/jwks",
            "http://10.0.0.1/jwks",
        ] {
            let error = Verifier::from_jwks_url(url, "iss", "aud")
                .await
                .unwrap_err();
            assert!(matches!(error, JwksError::Insecure(_)), "{url}: {error}");
        }
        let error = Verifier::from_jwks_url("not a url", "iss", "aud")
            .await
            .unwrap_err();
        assert!(matches!(error, JwksError::BadUrl(_)), "{error}");
        // Loopback http is allowed (the tests' provider); nothing listens on port 9 here.
        let error = Verifier::from_jwks_url("http://127.0.0.1:9/jwks.json", "iss", "aud")
            .await
            .unwrap_err();
        assert!(matches!(error, JwksError::Fetch { .. }), "{error}");
    }
}
