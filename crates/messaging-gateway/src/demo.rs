//! The demo web client (static files compiled in) and the development-token endpoint it uses.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use messaging_core::{Principal, Role, TenantId, UserId};
use serde::Deserialize;
use serde_json::json;

use crate::Shared;

const INDEX: &str = include_str!("../demo/index.html");
const APP: &str = include_str!("../demo/app.js");
const STYLE: &str = include_str!("../demo/style.css");

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/",
            get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX) }),
        )
        .route(
            "/app.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    APP,
                )
            }),
        )
        .route(
            "/style.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE) }),
        )
        .route("/dev/config.json", get(config))
        .route("/dev/token", get(token))
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
