//! `$connect` and `$disconnect` against moto.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use messaging_core::token::{sign, Claims, TokenVerifier};
use messaging_core::Role;
use messaging_devstack::tokens::{LOCAL_AUDIENCE, LOCAL_ISSUER, LOCAL_SECRET};
use messaging_handlers::connect::{self, ConnectService};
use test_support::{connection, connection_key, events, item_name, keys, user, TestStack};

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
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
        iss: LOCAL_ISSUER.into(),
        aud: LOCAL_AUDIENCE.into(),
        ..Default::default()
    }
}

fn key(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/keys/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test]
async fn a_valid_token_records_the_connection_and_marks_the_user_online() {
    let stack = TestStack::new().await;
    let alice = stack.connect_as("123", "alice", Role::Owner).await;
    let items = stack.snapshot().await;
    let id = alice.connection.as_str();

    let registry = &items[&item_name(&connection_key(id))];
    assert_eq!(registry["clientId"].as_s().unwrap(), "123");
    assert_eq!(registry["user"].as_s().unwrap(), "alice");
    assert_eq!(registry["role"].as_s().unwrap(), "OWNER");
    let ttl: i64 = registry["ttl"].as_n().unwrap().parse().unwrap();
    let expected = now() as i64 + 24 * 3600;
    assert!(
        (ttl - expected).abs() < 120,
        "ttl {ttl} is not ~24 h from now"
    );

    let alice_keys = keys("123");
    assert!(items
        .contains_key(&alice_keys.name(|k| k.user_connection(&user("alice"), &connection(id)))));
    let user = &items[&alice_keys.name(|k| k.user(&user("alice")))];
    assert_eq!(user["presence"].as_s().unwrap(), "online");
    assert_eq!(user["connectionCount"].as_n().unwrap(), "1");
    // Today's active users (the ActiveUsers gauge) count alice.
    let day = &messaging_core::time::rfc3339_millis(messaging_core::time::now_millis())[..10];
    let active = &items[&alice_keys.name(|k| k.active_users(day))];
    assert_eq!(active["count"].as_n().unwrap(), "1");
    assert_eq!(user["activeDay"].as_s().unwrap(), day);
    assert_eq!(items.len(), 4, "unexpected items: {:?}", items.keys());

    // A second connection the same day counts her once; bob is the second user counted.
    stack.connect_as("123", "alice", Role::Owner).await;
    stack.connect_as("123", "bob", Role::User).await;
    let items = stack.snapshot().await;
    let active = &items[&alice_keys.name(|k| k.active_users(day))];
    assert_eq!(active["count"].as_n().unwrap(), "2");
    assert!(
        active.get("users").is_none(),
        "no user ids on the tenant's day item"
    );
    let table = messaging_aws::MessagingTable::new(stack.dynamodb.clone(), &stack.table_name);
    let counts = table.active_users(day).await.unwrap();
    assert_eq!(counts[&messaging_core::TenantId::parse("123").unwrap()], 2);
}

#[tokio::test]
async fn bad_expired_foreign_and_unsigned_tokens_are_refused_with_nothing_written() {
    let stack = TestStack::new().await;
    let hs = Header::new(Algorithm::HS256);
    let local = EncodingKey::from_secret(LOCAL_SECRET.as_bytes());
    let other = EncodingKey::from_secret(b"a-different-secret-of-enough-length!!");
    let unsigned = format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(serde_json::to_string(&claims(now() + 600)).unwrap())
    );
    let mut wrong_issuer = claims(now() + 600);
    wrong_issuer.iss = "https://evil.example".into();
    let mut wrong_audience = claims(now() + 600);
    wrong_audience.aud = "another-app".into();
    let mut not_yet = claims(now() + 7200);
    not_yet.nbf = Some(now() + 3600);

    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing token", None),
        ("empty token", Some(String::new())),
        ("garbage", Some("not-a-jwt".into())),
        ("expired", Some(sign(&hs, &claims(now() - 3600), &local))),
        (
            "signed with another key",
            Some(sign(&hs, &claims(now() + 600), &other)),
        ),
        ("alg none", Some(unsigned)),
        ("wrong issuer", Some(sign(&hs, &wrong_issuer, &local))),
        ("wrong audience", Some(sign(&hs, &wrong_audience, &local))),
        ("not valid yet", Some(sign(&hs, &not_yet, &local))),
    ];
    for (case, token) in cases {
        let connection = events::new_connection_id();
        let response = connect::handle(
            &stack.connect,
            &events::connect(&connection, token.as_deref()),
        )
        .await;
        assert_eq!(response.status_code, 401, "{case} was not refused");
        assert!(stack.snapshot().await.is_empty(), "{case} wrote something");
    }
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_through_a_pem_key_or_a_jwks() {
    let stack = TestStack::new().await;
    let table = stack.connect.table.clone();
    let rsa = EncodingKey::from_rsa_pem(key("rsa-private.pem").as_bytes()).unwrap();
    let ec = EncodingKey::from_ec_pem(key("ec-private.pem").as_bytes()).unwrap();
    let rsa_other = EncodingKey::from_rsa_pem(key("rsa-other-private.pem").as_bytes()).unwrap();
    let with_kid = |alg, kid: &str| {
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        header
    };

    let queue = stack.connect.queue.clone();
    let pem = ConnectService {
        queue: queue.clone(),
        table: table.clone(),
        verifier: TokenVerifier::public_key_pem(
            "RS256",
            &key("rsa-public.pem"),
            LOCAL_ISSUER,
            LOCAL_AUDIENCE,
        )
        .unwrap()
        .into(),
    };
    let jwks = ConnectService {
        queue,
        table,
        verifier: TokenVerifier::jwks(&key("jwks.json"), LOCAL_ISSUER, LOCAL_AUDIENCE)
            .unwrap()
            .into(),
    };
    let hs256_with_public_key = sign(
        &Header::new(Algorithm::HS256),
        &claims(now() + 600),
        &EncodingKey::from_secret(key("rsa-public.pem").as_bytes()),
    );

    let cases = [
        (
            "RS256 via PEM",
            &pem,
            sign(&Header::new(Algorithm::RS256), &claims(now() + 600), &rsa),
            200,
        ),
        (
            "RS256 via JWKS",
            &jwks,
            sign(
                &with_kid(Algorithm::RS256, "rsa-1"),
                &claims(now() + 600),
                &rsa,
            ),
            200,
        ),
        (
            "ES256 via JWKS",
            &jwks,
            sign(
                &with_kid(Algorithm::ES256, "ec-1"),
                &claims(now() + 600),
                &ec,
            ),
            200,
        ),
        (
            "RS256 by an unknown key",
            &pem,
            sign(
                &Header::new(Algorithm::RS256),
                &claims(now() + 600),
                &rsa_other,
            ),
            401,
        ),
        (
            "unknown kid",
            &jwks,
            sign(
                &with_kid(Algorithm::RS256, "rsa-9"),
                &claims(now() + 600),
                &rsa,
            ),
            401,
        ),
        (
            "kid of another algorithm",
            &jwks,
            sign(
                &with_kid(Algorithm::RS256, "ec-1"),
                &claims(now() + 600),
                &rsa,
            ),
            401,
        ),
        (
            "HS256 keyed with the public key",
            &pem,
            hs256_with_public_key,
            401,
        ),
    ];
    for (case, service, token, expected) in cases {
        let before = stack.snapshot().await.len();
        let response = connect::handle(
            service,
            &events::connect(&events::new_connection_id(), Some(&token)),
        )
        .await;
        assert_eq!(response.status_code, expected, "{case}");
        if expected != 200 {
            assert_eq!(
                stack.snapshot().await.len(),
                before,
                "{case} wrote something"
            );
        }
    }
}

/// An identity provider's JWKS endpoint on loopback: serves `set`, counts the fetches.
struct Provider {
    url: String,
    set: std::sync::Arc<std::sync::Mutex<String>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Provider {
    async fn start(set: String) -> Self {
        use std::sync::atomic::Ordering;
        let shared = std::sync::Arc::new(std::sync::Mutex::new(set));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, f) = (shared.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let (s, f) = (s.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    let body = s.lock().unwrap().clone();
                    ([("content-type", "application/json")], body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            set: shared,
            fetches,
        }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_rotated_key_is_fetched_from_the_jwks_url_and_invented_kids_do_not_flood_the_provider() {
    use messaging_handlers::identity::{Refetch, Verifier};
    let stack = TestStack::new().await;
    let provider = Provider::start(key("jwks.json")).await;
    let min_interval = std::time::Duration::from_millis(300);
    let verifier = Verifier::from_jwks_url_with(
        &provider.url,
        LOCAL_ISSUER,
        LOCAL_AUDIENCE,
        Refetch {
            refresh_after: std::time::Duration::from_secs(3600),
            min_interval,
        },
    )
    .await
    .unwrap();
    assert_eq!(provider.fetches(), 1, "fetched once at start");
    let service = ConnectService {
        queue: stack.connect.queue.clone(),
        table: stack.connect.table.clone(),
        verifier,
    };
    let signed_by = |kid: &str, pem: &str| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        sign(
            &header,
            &claims(now() + 600),
            &EncodingKey::from_rsa_pem(key(pem).as_bytes()).unwrap(),
        )
    };
    let status = |token: String| {
        let service = &service;
        async move {
            connect::handle(
                service,
                &events::connect(&events::new_connection_id(), Some(&token)),
            )
            .await
            .status_code
        }
    };

    assert_eq!(status(signed_by("rsa-1", "rsa-private.pem")).await, 200);
    // The provider rotates: rsa-2 signs from now on. The first token with the new kid makes
    // the function fetch the set again, and it is accepted: no outage, no redeploy.
    *provider.set.lock().unwrap() = key("jwks-rotated.json");
    tokio::time::sleep(min_interval).await;
    assert_eq!(
        status(signed_by("rsa-2", "rsa-other-private.pem")).await,
        200
    );
    assert_eq!(provider.fetches(), 2);
    assert_eq!(
        status(signed_by("rsa-2", "rsa-other-private.pem")).await,
        200
    );
    assert_eq!(provider.fetches(), 2, "a known key fetches nothing");

    // A flood of tokens naming invented keys: refused, and the provider sees at most one
    // fetch per interval, not one per token.
    tokio::time::sleep(min_interval).await;
    let started = std::time::Instant::now();
    for i in 0..50 {
        assert_eq!(
            status(signed_by(&format!("invented-{i}"), "rsa-private.pem")).await,
            401
        );
    }
    let intervals = started.elapsed().as_millis() / min_interval.as_millis() + 1;
    let extra = provider.fetches() - 2;
    assert!(
        extra >= 1 && extra as u128 <= intervals,
        "{extra} fetches for 50 invented kids over {intervals} intervals"
    );
    // A token signed by a key the provider never published stays refused.
    assert_eq!(
        status(signed_by("rsa-1", "rsa-other-private.pem")).await,
        401
    );
}

#[tokio::test]
async fn presence_goes_offline_only_when_the_last_connection_closes() {
    let stack = TestStack::new().await;
    let phone = stack.connect_as("123", "alice", Role::User).await;
    let laptop = stack.connect_as("123", "alice", Role::User).await;
    let presence = |items: &std::collections::BTreeMap<String, _>| -> (String, String) {
        let user: &std::collections::BTreeMap<String, aws_sdk_dynamodb::types::AttributeValue> =
            &items[&keys("123").name(|k| k.user(&user("alice")))];
        (
            user["presence"].as_s().unwrap().clone(),
            user["connectionCount"].as_n().unwrap().clone(),
        )
    };
    assert_eq!(
        presence(&stack.snapshot().await),
        ("online".into(), "2".into())
    );

    stack.disconnect(&phone).await;
    assert_eq!(
        presence(&stack.snapshot().await),
        ("online".into(), "1".into())
    );

    stack.disconnect(&laptop).await;
    let items = stack.snapshot().await;
    assert_eq!(presence(&items), ("offline".into(), "0".into()));
    assert_eq!(
        items.keys().filter(|k| !k.contains("|ACTIVE#")).count(),
        1,
        "only the user record (and today's active users) should remain: {:?}",
        items.keys()
    );

    // A second disconnect of the same connection is harmless and counts nothing twice.
    stack.disconnect(&laptop).await;
    assert_eq!(
        presence(&stack.snapshot().await),
        ("offline".into(), "0".into())
    );
}

#[tokio::test]
async fn presence_is_announced_when_the_first_connection_opens_and_the_last_closes() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("123", "owner", Role::Owner).await;
    let create = serde_json::json!({ "type": "CREATE_CONVERSATION", "conversationId": "team", "kind": "project", "members": ["bob"] });
    stack.send(&owner, &create).await;
    stack.pump().await;
    stack.gateway.take();

    let phone = stack.connect_as("123", "bob", Role::User).await;
    let laptop = stack.connect_as("123", "bob", Role::User).await;
    stack.disconnect(&phone).await;
    stack.disconnect(&laptop).await;
    stack.pump().await;
    let presence: Vec<String> = test_support::frames_for(&stack.gateway.take(), &owner)
        .iter()
        .filter(|f| f["type"] == "PRESENCE")
        .map(|f| {
            format!(
                "{} {}",
                f["userId"].as_str().unwrap(),
                f["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        presence,
        ["bob online", "bob offline"],
        "only the first open and the last close"
    );
}
