//! The demo web client (clients/demo, built by `npm run build` in clients/ into
//! clients/demo/dist: React and the client SDK bundled into one app.js) and the
//! development-token endpoint it uses. The files are read from the build directory on every
//! request, so a rebuilt demo is served without restarting the gateway.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use messaging_core::{Principal, Role, TenantId, UserId};
use serde::Deserialize;
use serde_json::json;

use crate::Shared;

/// Where `npm run build` in clients/ puts the demo, in this checkout.
pub fn default_demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../clients/demo/dist")
}

/// The files of the build, and their types: nothing else in the directory is served.
const ASSETS: [(&str, &str, &str); 5] = [
    ("/", "index.html", "text/html; charset=utf-8"),
    ("/app.js", "app.js", "text/javascript; charset=utf-8"),
    ("/style.css", "style.css", "text/css; charset=utf-8"),
    ("/app.js.map", "app.js.map", "application/json"),
    (
        "/app.js.LEGAL.txt",
        "app.js.LEGAL.txt",
        "text/plain; charset=utf-8",
    ),
];

/// Scripts and styles from this origin only (user text can never run as script); sockets and
/// fetches to the gateway and to the presigned S3 URLs (another origin locally).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     connect-src 'self' ws: wss: http: https:; img-src 'self' data: blob: http: https:; \
     object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

pub(crate) fn router(dir: PathBuf) -> Router<Arc<Shared>> {
    let dir = Arc::new(dir);
    let mut router = Router::new();
    for (path, file, content_type) in ASSETS {
        let dir = dir.clone();
        router = router.route(
            path,
            get(move || async move { asset(&dir, file, content_type).await }),
        );
    }
    router
        .route("/dev/config.json", get(config))
        .route("/dev/token", get(token))
}

async fn asset(dir: &Path, file: &str, content_type: &'static str) -> Response {
    let path = dir.join(file);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let mut response = ([(header::CONTENT_TYPE, content_type)], bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "The demo web client is not built ({}: {e}).\n\
                 Build it with: cd clients && npm ci && npm run build\n\
                 (./infra/local/run.sh and ./infra/local/test.sh do this.)\n",
                path.display()
            ),
        )
            .into_response(),
    }
}

async fn config(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(json!({ "stage": shared.api.stage })).into_response()
}

#[derive(Deserialize)]
struct TokenRequest {
    tenant: String,
    user: String,
    role: String,
    name: Option<String>,
    /// The verified email the token carries (default `{user}@{tenant}.stackpro.local`).
    email: Option<String>,
}

/// Whether a request from `peer` may get a development token: only from this machine. A
/// gateway bound to a LAN address (to try the demo from a phone) must not mint OWNER tokens of
/// any tenant for whoever is on the network.
pub(crate) fn may_mint(peer: SocketAddr) -> bool {
    match peer.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// A development token signed with the local stack's secret (what `stackpro-dev token` mints),
/// carrying a verified email as an identity provider's would; for loopback peers only.
async fn token(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(request): Query<TokenRequest>,
) -> Response {
    if !may_mint(peer) {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({ "message": "development tokens are minted for requests from this machine only; use stackpro-dev token" })),
        )
            .into_response();
    }
    let parsed = (|| -> Result<Principal, String> {
        Ok(Principal {
            tenant: TenantId::parse(request.tenant).map_err(|e| e.to_string())?,
            user: UserId::parse(request.user).map_err(|e| e.to_string())?,
            role: request.role.parse::<Role>().map_err(|e| e.to_string())?,
            name: request.name.filter(|n| !n.trim().is_empty()),
        })
    })();
    let email = request.email.filter(|e| !e.trim().is_empty());
    match parsed.and_then(|p| {
        let contacts = messaging_core::token::Contacts {
            email: Some(email.unwrap_or_else(|| messaging_devstack::tokens::local_email(&p))),
            phone: None,
        };
        messaging_devstack::tokens::mint_local_with(&p, &contacts, 12 * 3600)
            .map_err(|e| e.to_string())
    }) {
        Ok(token) => axum::Json(json!({ "token": token })).into_response(),
        Err(message) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "message": message })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header;

    #[tokio::test]
    async fn serves_the_build_with_its_policy_and_says_how_to_build_it_when_missing() {
        let dir = std::env::temp_dir().join(format!("stackpro-demo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("app.js"), "console.log(1)").unwrap();
        let served = super::asset(&dir, "app.js", "text/javascript; charset=utf-8").await;
        assert_eq!(served.status(), 200);
        let policy = served.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(policy.contains("script-src 'self';"), "{policy}");
        assert_eq!(served.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

        let missing = super::asset(&dir, "index.html", "text/html; charset=utf-8").await;
        assert_eq!(missing.status(), 503);
        let body = axum::body::to_bytes(missing.into_body(), 4096)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("cd clients && npm ci && npm run build"),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_loopback_peers_get_development_tokens() {
        for (peer, allowed) in [
            ("127.0.0.1:5000", true),
            ("127.8.9.10:5000", true),
            ("[::1]:5000", true),
            ("[::ffff:127.0.0.1]:5000", true),
            ("192.168.1.20:5000", false),
            ("10.0.0.1:5000", false),
            ("[::ffff:192.168.1.20]:5000", false),
            ("[fe80::1]:5000", false),
        ] {
            assert_eq!(super::may_mint(peer.parse().unwrap()), allowed, "{peer}");
        }
    }
}
