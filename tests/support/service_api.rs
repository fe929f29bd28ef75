//! Calls to the server API through the local gateway, signed with the AWS SDK's own SigV4
//! signer (`aws-sigv4`), as a portal backend's SDK would sign them.

use messaging_gateway::sigv4::ServiceCaller;
use serde_json::Value;

/// A backend whose policy allows acme's server API routes only.
pub fn acme_backend() -> ServiceCaller {
    ServiceCaller {
        access_key_id: "ACMEBACKENDKEY".into(),
        secret_access_key: "acme-backend-secret".into(),
        arn: "arn:aws:iam::123456789012:role/acme-backend".into(),
        allow: vec!["arn:aws:execute-api:*:*:*/*/*/service/tenants/acme/*".into()],
    }
}

/// A backend whose policy allows globex's server API routes only.
pub fn globex_backend() -> ServiceCaller {
    ServiceCaller {
        access_key_id: "GLOBEXBACKENDKEY".into(),
        secret_access_key: "globex-backend-secret".into(),
        arn: "arn:aws:iam::123456789012:role/globex-backend".into(),
        allow: vec!["arn:aws:execute-api:*:*:*/*/*/service/tenants/globex/*".into()],
    }
}

/// How a test call is authenticated.
pub enum Auth<'a> {
    /// Signed with these credentials.
    Signed(&'a ServiceCaller),
    /// Signed for this other body (a body changed after signing).
    SignedFor(&'a ServiceCaller, &'a str),
    /// Signed with this access key but the wrong secret.
    WrongSecret(&'a ServiceCaller),
    /// `Authorization: Bearer <token>`, as a user calls the reads.
    Bearer(&'a str),
    None,
}

/// An answer: status, the response head, and the JSON body (`Null` when empty or not JSON).
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Value,
}

impl Answer {
    pub fn replayed(&self) -> bool {
        self.head
            .to_ascii_lowercase()
            .contains("idempotent-replayed: true")
    }
}

/// `method` on `path` of the gateway at `base` (`http://127.0.0.1:port`), with `body` and an
/// optional `Idempotency-Key`.
pub async fn call(
    base: &str,
    auth: Auth<'_>,
    method: &str,
    path: &str,
    idempotency_key: Option<&str>,
    body: &str,
) -> Answer {
    let url = format!("{base}{path}");
    let host = base.trim_start_matches("http://").to_owned();
    let mut headers = vec![
        ("host".to_owned(), host),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    if let Some(key) = idempotency_key {
        headers.push(("idempotency-key".to_owned(), key.to_owned()));
    }
    let mut signed_body = body;
    let signer = match &auth {
        Auth::Signed(c) => Some((c.access_key_id.clone(), c.secret_access_key.clone())),
        Auth::SignedFor(c, other) => {
            signed_body = other;
            Some((c.access_key_id.clone(), c.secret_access_key.clone()))
        }
        Auth::WrongSecret(c) => Some((c.access_key_id.clone(), "not-the-secret".to_owned())),
        Auth::Bearer(token) => {
            headers.push(("authorization".to_owned(), format!("Bearer {token}")));
            None
        }
        Auth::None => None,
    };
    if let Some((key, secret)) = signer {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let identity =
            aws_credential_types::Credentials::new(key, secret, None, None, "test").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("execute-api")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            method,
            &url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(signed_body.as_bytes()),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        for (name, value) in instructions.headers() {
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    // The helper writes Host itself.
    headers.retain(|(name, _)| name != "host");
    let (status, head, bytes) =
        crate::http::request_with_head(method, &url, &headers, body.as_bytes()).await;
    Answer {
        status,
        head,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// A server API request as the function receives it from an `AWS_IAM` route (the caller in
/// `requestContext.authorizer.iam`), for calling the handler directly.
pub fn iam_request(
    method: &str,
    path: &str,
    idempotency_key: Option<&str>,
    body: &str,
) -> lambda_http::Request {
    use lambda_http::RequestExt;
    let context: aws_lambda_events::apigw::ApiGatewayV2httpRequestContext =
        serde_json::from_value(serde_json::json!({
            "routeKey": format!("{method} {path}"),
            "authorizer": { "iam": { "userArn": "arn:aws:iam::123456789012:role/portal-backend" } },
            "http": { "method": method, "path": path }
        }))
        .expect("a payload-2.0 request context");
    let mut request = lambda_http::http::Request::builder()
        .method(method)
        .uri(format!("https://api.test{path}"));
    if let Some(key) = idempotency_key {
        request = request.header("idempotency-key", key);
    }
    request
        .body(lambda_http::Body::Text(body.to_owned()))
        .unwrap()
        .with_request_context(lambda_http::request::RequestContext::ApiGatewayV2(context))
}
