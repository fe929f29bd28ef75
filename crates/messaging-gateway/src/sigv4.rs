//! API Gateway's `AWS_IAM` route authorization, done locally: a request to such a route must be
//! signed with AWS Signature Version 4 (header form) by a known caller whose policy allows
//! `execute-api:Invoke` on the route's ARN. As deployed, the function then sees the caller in
//! `requestContext.authorizer.iam`; a refused request never reaches it (403, API Gateway's
//! messages).
//!
//! The signature is recomputed from the request as received (canonical request, string to
//! sign, signing key; <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html>)
//! and compared in constant time. The tests sign with the AWS SDK's own signer (`aws-sigv4`),
//! and curl's `--aws-sigv4` works against it (docs/server-api.md).

use aws_lc_rs::{digest, hmac};
use axum::http::HeaderMap;
use serde::Deserialize;

/// How far a request's `X-Amz-Date` may be from the gateway's clock (API Gateway: 5 minutes).
pub const MAX_CLOCK_SKEW_MILLIS: i64 = 5 * 60 * 1000;

/// An IAM principal allowed to call `AWS_IAM` routes, as a local stand-in for an IAM user or
/// role and its identity policy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCaller {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The principal's ARN, passed to the function as `userArn`.
    pub arn: String,
    /// `execute-api:Invoke` resources the principal's policy allows, IAM-style (`*` any run of
    /// characters, `?` one), e.g. `arn:aws:execute-api:*:*:*/*/*/service/tenants/acme/*`.
    pub allow: Vec<String>,
}

impl ServiceCaller {
    /// The local stack's portal backend: every server API route of every tenant. Known to
    /// anyone who reads this file, as a local dev token's key is: never a deployed credential.
    pub fn local_portal_backend() -> Self {
        Self {
            access_key_id: "LOCALPORTALBACKEND".into(),
            secret_access_key: "local-portal-backend-secret-not-for-aws".into(),
            arn: "arn:aws:iam::123456789012:role/portal-backend".into(),
            allow: vec!["arn:aws:execute-api:*:*:*/*/*/service/*".into()],
        }
    }

    fn account_id(&self) -> &str {
        self.arn.split(':').nth(4).unwrap_or_default()
    }
}

/// The caller as API Gateway passes it (`requestContext.authorizer.iam`).
pub fn authorizer_context(caller: &ServiceCaller) -> serde_json::Value {
    serde_json::json!({
        "iam": {
            "accessKey": caller.access_key_id,
            "accountId": caller.account_id(),
            "callerId": caller.arn.rsplit('/').next().unwrap_or_default(),
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": caller.arn,
            "userId": caller.arn.rsplit('/').next().unwrap_or_default(),
        }
    })
}

/// A request as it arrived: the raw (still percent-encoded) path and query string.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Why a request was refused: API Gateway's 403 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// Checks `request`'s signature against `callers` and the caller's policy against the route's
/// ARN (`arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}`) at `now` (epoch
/// ms). Returns the caller.
pub fn verify<'c>(
    callers: &'c [ServiceCaller],
    region: &str,
    route_arn: &str,
    request: &SignedRequest<'_>,
    now: i64,
) -> Result<&'c ServiceCaller, Refused> {
    let authorization = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Refused("Forbidden".into()))?;
    let fields = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| Refused("Forbidden".into()))?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for field in fields.split(',') {
        let (name, value) = field.trim().split_once('=').unwrap_or(("", ""));
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }
    let malformed = || {
        Refused("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.".into())
    };
    let (credential, signed_headers, signature) = (
        credential.ok_or_else(malformed)?,
        signed_headers.ok_or_else(malformed)?,
        signature.ok_or_else(malformed)?,
    );
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, date, scope_region, service, "aws4_request"] = scope.as_slice() else {
        return Err(Refused(format!(
            "Credential should be scoped to a valid region, not '{credential}'."
        )));
    };
    let caller = callers
        .iter()
        .find(|c| c.access_key_id == *access_key)
        .ok_or_else(|| Refused("The security token included in the request is invalid.".into()))?;
    if *scope_region != region || *service != "execute-api" {
        return Err(Refused(format!(
            "Credential should be scoped to correct service ('execute-api') and region ('{region}')."
        )));
    }
    let amz_date = request
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Refused("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into()))?;
    let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
        Refused(format!(
            "X-Amz-Date '{amz_date}' is not YYYYMMDD'T'HHMMSS'Z'."
        ))
    })?;
    if !amz_date.starts_with(date) {
        return Err(Refused(
            "Credential should be scoped to a valid date.".into(),
        ));
    }
    if (now - signed_at).abs() > MAX_CLOCK_SKEW_MILLIS {
        return Err(Refused(format!(
            "Signature expired: {amz_date} is more than 5 minutes from the server's time."
        )));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"host") {
        return Err(Refused("'Host' must be a signed header.".into()));
    }
    let expected = signature_of(
        caller,
        &names,
        signed_headers,
        amz_date,
        credential,
        request,
    );
    if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(Refused("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into()));
    }
    if !caller.allow.iter().any(|pattern| glob(pattern, route_arn)) {
        return Err(Refused(format!(
            "User: {} is not authorized to perform: execute-api:Invoke on resource: {route_arn}",
            caller.arn
        )));
    }
    Ok(caller)
}

fn signature_of(
    caller: &ServiceCaller,
    names: &[&str],
    signed_headers: &str,
    amz_date: &str,
    credential: &str,
    request: &SignedRequest<'_>,
) -> String {
    let mut canonical_headers = String::new();
    for name in names {
        let values: Vec<String> = request
            .headers
            .get_all(*name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload_hash = match request
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        // A declared hash is signed; it must also be the body's.
        Some(declared)
            if declared == hex(digest::digest(&digest::SHA256, request.body).as_ref()) =>
        {
            declared.to_owned()
        }
        Some(_) => "the declared payload hash is not the body's".into(),
        None => hex(digest::digest(&digest::SHA256, request.body).as_ref()),
    };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        request.method,
        canonical_uri(request.raw_path),
        canonical_query(request.raw_query),
        canonical_headers,
        signed_headers,
        payload_hash
    );
    let scope = credential
        .split_once('/')
        .map(|(_, s)| s)
        .unwrap_or_default();
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let mut key = format!("AWS4{}", caller.secret_access_key).into_bytes();
    for part in scope.split('/') {
        key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes())
            .as_ref()
            .to_vec();
    }
    hex(hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &key),
        string_to_sign.as_bytes(),
    )
    .as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// RFC 3986 encoding of everything but the unreserved characters (and `/` when `keep_slash`).
fn encode(text: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The path as every AWS service but S3 signs it: the path as sent (percent-encoded once),
/// encoded again.
fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".into();
    }
    encode(raw_path.as_bytes(), true)
}

/// Parameters decoded, encoded strictly, sorted by name then value.
fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(name), false), encode(&decode(value), false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `YYYYMMDDTHHMMSSZ` as epoch milliseconds.
fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| {
        let part = text.get(range)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse::<i64>().ok())?
    };
    let rfc3339 = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.000Z",
        num(0..4)?,
        num(4..6)?,
        num(6..8)?,
        num(9..11)?,
        num(11..13)?,
        num(13..15)?
    );
    messaging_core::time::parse_rfc3339_millis(&rfc3339)
}

/// IAM's wildcard match: `*` any run of characters (`/` included), `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_wildcards_match_like_iam() {
        let arn = "arn:aws:execute-api:us-east-1:123456789012:local/$default/POST/service/tenants/acme/conversations";
        assert!(glob("arn:aws:execute-api:*:*:*/*/*/service/*", arn));
        assert!(glob(
            "arn:aws:execute-api:*:*:*/*/POST/service/tenants/acme/*",
            arn
        ));
        assert!(!glob(
            "arn:aws:execute-api:*:*:*/*/*/service/tenants/globex/*",
            arn
        ));
        assert!(!glob("arn:aws:execute-api:*:*:*/*/GET/*", arn));
        assert!(glob("a?c", "abc") && !glob("a?c", "ac"));
    }

    #[test]
    fn paths_and_queries_are_canonical_as_sigv4_says() {
        assert_eq!(
            canonical_uri("/service/tenants/acme/users/a%20b"),
            "/service/tenants/acme/users/a%2520b"
        );
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_query("b=2&a=%7e x&a=1"), "a=1&a=~%20x&b=2");
        assert_eq!(parse_amz_date("20261203T120000Z"), Some(1_796_299_200_000));
        assert_eq!(parse_amz_date("2026-12-03"), None);
    }
}
