//! The bodies of the fuzz targets in `fuzz/fuzz_targets/`: each takes any bytes, feeds them to
//! one inbound parser, and asserts what that parser promises besides not panicking (an error
//! answer that fits one WebSocket message, a job that survives its own round trip, a cursor
//! that opens for nobody but its owner). cargo-fuzz drives them with libFuzzer; the test
//! `the_committed_corpora_pass_every_target` replays `fuzz/corpus/` through them on stable
//! Rust, so a machine without nightly still runs every input ever found interesting.
//!
//! | target | parser | who can send it |
//! |---|---|---|
//! | `ws_frame` | [`parse_inbound`] | any connected client (`route`) |
//! | `file_frame` | [`parse_file_inbound`] | any connected client (`file-share`) |
//! | `sqs_job` | [`BroadcastJob`], [`NotifyWork::parse`] | the stack's own functions (through SQS) |
//! | `http_request` | [`parse_http_read`] | anyone on the internet (the HTTP API) |
//! | `service_request` | [`parse_service_request`], [`IdempotencyKey::parse`] | the portal's backend (the server API; signed, but its bodies come from the portal's users) |
//! | `s3_notification` | [`parse_s3_notification`] | S3, carrying keys as clients uploaded them (the uploads queue) |
//! | `image_preview` | [`messaging_images::preview`] | any user who uploads a file |
//! | `cursor` | [`Signer::open`] | any client (a `cursor` field, a `cursor` parameter) |
//! | `unsubscribe` | [`unsubscribe::open`] | anyone with a link (no token) |
//! | `token` | [`TokenVerifier`] (header, claims, JWKS) | anyone (`$connect`, the HTTP API), the identity provider |
//! | `template` | [`Template::parse`] and every reader | the developer (`template.yaml`) |

use jsonwebtoken::{EncodingKey, Header};
use messaging_core::jobs::{BroadcastJob, NotifyWork, MAX_GROUP_ID_CHARS};
use messaging_core::protocol::{
    parse_file_inbound, parse_http_read, parse_inbound, parse_service_request, IdempotencyKey,
    ServerFrame, ServiceAction, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, MAX_SERVICE_BODY_BYTES,
};
use messaging_core::signed::Signer;
use messaging_core::token::TokenVerifier;
use messaging_core::{unsubscribe, ProtocolError, TenantId, UserId};
use messaging_template::Template;

/// A target's body: any bytes in, a panic for a broken promise.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/{name}.rs` and corpus directory.
pub const TARGETS: [(&str, Target); 12] = [
    ("ws_frame", ws_frame),
    ("file_frame", file_frame),
    ("sqs_job", sqs_job),
    ("http_request", http_request),
    ("service_request", service_request),
    ("s3_notification", s3_notification),
    ("image_preview", image_preview),
    ("cursor", cursor),
    ("unsubscribe", unsubscribe_link),
    ("token", token),
    ("template", template),
    ("search_block", search_block),
];

/// API Gateway hands a function text frames only; a binary frame never reaches a parser.
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// An error answer is one WebSocket message: it must fit API Gateway's 128 KB.
fn assert_answer_fits(request_id: Option<String>, error: &ProtocolError) {
    let answer = ServerFrame::error(request_id, error).to_json();
    assert!(
        answer.len() <= MAX_MESSAGE_BYTES,
        "an error answer of {} bytes cannot be sent",
        answer.len()
    );
}

/// A frame to `route`: parsed, or refused with an answer that can be sent.
pub fn ws_frame(data: &[u8]) {
    let Some(body) = text(data) else { return };
    match parse_inbound(body) {
        Ok(_) => assert!(body.len() <= MAX_FRAME_BYTES),
        Err(e) => assert_answer_fits(None, &e),
    }
}

/// A frame to `file-share`: parsed, or refused with an answer that can be sent.
pub fn file_frame(data: &[u8]) {
    let Some(body) = text(data) else { return };
    match parse_file_inbound(body) {
        Ok(_) => assert!(body.len() <= MAX_FRAME_BYTES),
        Err(e) => assert_answer_fits(None, &e),
    }
}

/// An SQS body: a broadcast job survives its own round trip, its group and deduplication ids
/// fit SQS's 128 characters, and what it derives (retry, page, continuation) parses back; a
/// notify work item names only real shards.
pub fn sqs_job(data: &[u8]) {
    let Some(body) = text(data) else { return };
    if let Ok(job) = serde_json::from_str::<BroadcastJob>(body) {
        let again: BroadcastJob =
            serde_json::from_str(&serde_json::to_string(&job).expect("a job serialises"))
                .expect("a serialised job parses");
        assert_eq!(again, job);
        assert!(job.group().len() <= MAX_GROUP_ID_CHARS, "{}", job.group());
        let retry = job.retry(Vec::new());
        assert_eq!(retry.group(), job.group(), "a retry stays in its group");
        assert_ne!(retry.deduplication_id(), job.deduplication_id());
        for derived in [retry, job.continuation(Vec::new())] {
            let text = serde_json::to_string(&derived).expect("a job serialises");
            assert_eq!(
                serde_json::from_str::<BroadcastJob>(&text).ok(),
                Some(derived)
            );
        }
    }
    const SHARDS: usize = 8;
    if let Ok(work) = NotifyWork::parse(body, SHARDS) {
        let starts = work.starts(SHARDS);
        assert!(!starts.is_empty() && starts.len() <= SHARDS);
        assert!(starts.iter().all(|s| s.shard < SHARDS));
    }
    // A lifecycle step: what parses is a valid tenant and job id, and reads back the same.
    if let Ok(step) = messaging_core::lifecycle::JobStep::parse(body) {
        let text = serde_json::to_string(&step).expect("a step serialises");
        assert_eq!(
            messaging_core::lifecycle::JobStep::parse(&text).ok(),
            Some(step.clone())
        );
        assert_eq!(step.job_id.as_str().len(), 32);
    }
}

/// An HTTP API request, as lines: the method, the path, then `name=value` query parameters.
pub fn http_request(data: &[u8]) {
    let Some(request) = text(data) else { return };
    let mut lines = request.split('\n');
    let method = lines.next().unwrap_or_default();
    let path = lines.next().unwrap_or_default();
    let query: Vec<(&str, &str)> = lines.filter_map(|line| line.split_once('=')).collect();
    if let Err(e) = parse_http_read(method, path, &query) {
        assert!(
            e.message.len() <= 1024,
            "an error message of {} bytes",
            e.message.len()
        );
        assert_answer_fits(None, &e);
    }
}

/// A server API request, as lines: the method, the path, the `Idempotency-Key`, then the body.
/// A refusal is bounded and fits an answer; what parses names the path's tenant only, and a
/// key that parses never holds a `#` (it becomes part of a table key).
pub fn service_request(data: &[u8]) {
    let Some(request) = text(data) else { return };
    let mut parts = request.splitn(4, '\n');
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();
    let key = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    if let Ok(key) = IdempotencyKey::parse(key) {
        assert!(!key.as_str().contains('#') && !key.as_str().is_empty());
    }
    match parse_service_request(method, path, body.as_bytes()) {
        Ok(request) => {
            assert!(body.len() <= MAX_SERVICE_BODY_BYTES);
            let segment = path.trim_matches('/').split('/').nth(2).unwrap_or_default();
            assert_eq!(request.tenant.as_str(), segment, "the tenant is the path's");
            if let ServiceAction::UpsertUser(user, _) = &request.action {
                assert!(!user.is_system());
            }
        }
        Err(e) => {
            assert!(
                e.message.len() <= 1024,
                "an error message of {} bytes",
                e.message.len()
            );
            assert_answer_fits(None, &e);
        }
    }
}

/// An SQS body from the uploads queue: what parses names only created objects, each key
/// decoded (never longer than it was sent).
pub fn s3_notification(data: &[u8]) {
    let Some(body) = text(data) else { return };
    if let Ok(objects) = messaging_core::uploads::parse_s3_notification(body) {
        assert!(objects.len() <= messaging_core::uploads::MAX_NOTIFICATION_RECORDS);
        for object in objects {
            assert!(object.key.len() <= body.len());
        }
    }
}

/// An uploaded file's bytes, with the declared type chosen by the first byte: a preview is
/// at most 320 a side and of an image within the bounds; a refusal says why in a line.
/// Pixels above which [`image_preview`] skips an input (its header's claim).
const FUZZ_MAX_PIXELS: u64 = 4_000_000;

pub fn image_preview(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let mime = messaging_core::files::PREVIEWED_MIME_TYPES
        [usize::from(selector) % messaging_core::files::PREVIEWED_MIME_TYPES.len()];
    // Inputs whose header declares more than a few megapixels (up to the 40 allowed) are
    // valid work, only slow: a tiny JPEG declaring tens of megapixels took over 10 s a run in
    // the instrumented build and failed the short CI runs as a timeout. Their time is
    // measured in docs/performance.md (40 MP: 403 ms in release); here they are skipped, so
    // the fuzzer spends its time on the parsers' paths.
    if messaging_images::dimensions(bytes)
        .is_some_and(|(w, h)| u64::from(w) * u64::from(h) > FUZZ_MAX_PIXELS)
    {
        return;
    }
    match messaging_images::preview(bytes, mime) {
        Ok(preview) => {
            assert!(preview.preview_width <= messaging_images::PREVIEW_SIDE);
            assert!(preview.preview_height <= messaging_images::PREVIEW_SIDE);
            assert!(
                u64::from(preview.width) * u64::from(preview.height)
                    <= messaging_images::MAX_PIXELS
            );
            assert!(!preview.jpeg.is_empty());
        }
        Err(refused) => assert!(refused.to_string().len() <= 400, "{refused}"),
    }
}

fn principal(n: u8) -> (TenantId, UserId) {
    let tenant = TenantId::parse(if n & 1 == 0 { "t1" } else { "t2" }).expect("an id");
    let user = UserId::parse(if n & 2 == 0 { "alice" } else { "bob" }).expect("an id");
    (tenant, user)
}

/// A page cursor: a forged one never opens; a real one opens only for its own tenant, user
/// and scope, and gives back exactly its position.
pub fn cursor(data: &[u8]) {
    let signer = Signer::new(b"fuzzing secret of at least 32 bytes!");
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some(rest) = text(rest) else { return };
    let (tenant, user) = principal(selector);
    if selector & 4 == 0 {
        // A client's cursor: made up, so no signer of ours issued it.
        assert!(signer.open(rest, &tenant, &user, "history").is_err());
    } else {
        // Our cursor for (tenant, user, "history", rest), opened by every principal.
        let issued = signer.issue(&tenant, &user, "history", rest);
        for other in 0..4 {
            let (t, u) = principal(other);
            let opened = signer.open(&issued, &t, &u, "history");
            let own = t == tenant && u == user;
            if own && issued.len() <= messaging_core::signed::MAX_CURSOR_CHARS {
                assert_eq!(opened.as_deref(), Ok(rest));
            } else {
                assert!(
                    opened.is_err(),
                    "{t}/{u} opened a cursor of {tenant}/{user}"
                );
            }
            assert!(signer.open(&issued, &t, &u, "search").is_err());
        }
    }
}

/// An unsubscribe link's query: only a link this deployment issued opens, for its own user.
pub fn unsubscribe_link(data: &[u8]) {
    let signer = Signer::new(b"fuzzing secret of at least 32 bytes!");
    let Some(query) = text(data) else { return };
    let mut parts = query.splitn(3, '\n');
    let (c, u, t) = (parts.next(), parts.next(), parts.next());
    assert!(
        unsubscribe::open(&signer, c, u, t, 0).is_err(),
        "a made-up link opened"
    );
    // A real link for whoever the fuzzer names, if those are ids: it opens for them only.
    let (Some(Ok(tenant)), Some(Ok(user))) = (c.map(TenantId::parse), u.map(UserId::parse)) else {
        return;
    };
    let link = unsubscribe::link(&signer, "https://x/unsubscribe", &tenant, &user, 0);
    let token = link.rsplit_once("&t=").map(|(_, t)| t);
    assert_eq!(
        unsubscribe::open(&signer, c, u, token, 1),
        Ok((tenant.clone(), user.clone()))
    );
    let other = if tenant.as_str() == "other" {
        "another"
    } else {
        "other"
    };
    assert!(unsubscribe::open(&signer, Some(other), u, token, 1).is_err());
}

const TOKEN_SECRET: &[u8] = b"a development secret of 32 bytes or more";

/// Tokens: a string from a client as a token; any JSON as the claims of a correctly signed
/// token (so the claims parser is reached, not just the signature check); any text as a JWKS.
pub fn token(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some(rest) = text(rest) else { return };
    let verifier = TokenVerifier::hs256(TOKEN_SECRET, "issuer", "audience").expect("a verifier");
    match mode % 3 {
        0 => {
            assert!(
                verifier.verify(rest).is_err(),
                "an unsigned string verified"
            );
        }
        1 => {
            let Ok(claims) = serde_json::from_str::<serde_json::Value>(rest) else {
                return;
            };
            let token = jsonwebtoken::encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(TOKEN_SECRET),
            )
            .expect("any JSON value signs");
            if let Ok(principal) = verifier.verify(&token) {
                // Whatever verified names the issuer and audience we trust.
                assert_eq!(claims["iss"], "issuer");
                let aud = &claims["aud"];
                assert!(
                    aud == "audience"
                        || aud
                            .as_array()
                            .is_some_and(|a| a.iter().any(|v| v == "audience")),
                    "accepted for audience {aud}"
                );
                assert_eq!(claims["sub"], principal.user.as_str());
                assert_eq!(claims["clientId"], principal.tenant.as_str());
            }
        }
        _ => {
            if let Ok(jwks) = TokenVerifier::jwks(rest, "issuer", "audience") {
                let token = jsonwebtoken::encode(
                    &Header::default(),
                    &serde_json::json!({"sub": "a", "clientId": "t", "role": "OWNER",
                        "iss": "issuer", "aud": "audience", "exp": u32::MAX}),
                    &EncodingKey::from_secret(TOKEN_SECRET),
                )
                .expect("signs");
                assert!(
                    jwks.verify(&token).is_err(),
                    "an HS256 token verified against a JWKS"
                );
            }
        }
    }
}

/// A template: parsed, then every reader run over it; each gives an answer or an error.
pub fn template(data: &[u8]) {
    let Some(yaml) = text(data) else { return };
    let Ok(template) = Template::parse(yaml) else {
        return;
    };
    let _ = template.table();
    let _ = template.queues();
    let _ = template.buckets();
    let _ = template.websocket_api();
    let _ = template.sqs_event_sources();
    let _ = template.stream_event_sources();
    let _ = template.http_routes();
    let _ = template.schedules();
    let _ = template.function_policies();
    let _ = template.function_environment();
}

/// A search block as stored (read back on every SEARCH): any text is a block or an error;
/// a block reads back to itself after encoding, and re-blocking its lines keeps every
/// posting in its own bucket, each once.
pub fn search_block(data: &[u8]) {
    use messaging_core::search::{blocks_for, bucket_of, Block, MAX_BLOCK_BYTES};
    let Some(text) = text(data) else { return };
    let Ok(block) = Block::decode(text) else {
        return;
    };
    let encoded = block.encode();
    assert_eq!(Block::decode(&encoded).as_ref(), Ok(&block));
    let mut expected: Vec<(String, u64, String)> = block
        .lines
        .iter()
        .flat_map(|l| {
            l.words
                .iter()
                .map(move |w| (l.conversation_id.clone(), l.seq, w.clone()))
        })
        .collect();
    let mut postings = Vec::new();
    for (level, bucket, part) in blocks_for(&block.lines) {
        assert!(part.encode().len() <= MAX_BLOCK_BYTES.max(encoded.len()));
        for line in &part.lines {
            for word in &line.words {
                assert_eq!(bucket_of(word, level), bucket);
                postings.push((line.conversation_id.clone(), line.seq, word.clone()));
            }
        }
    }
    expected.sort();
    postings.sort();
    assert_eq!(postings, expected);
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::TARGETS;

    /// Every input of `fuzz/corpus/{target}/` (seeds, and whatever the long runs kept) through
    /// its target: the regression suite of the fuzzers, on stable Rust.
    #[test]
    fn the_committed_corpora_pass_every_target() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let entries = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("no corpus for {name} at {}: {e}", dir.display()));
            let mut count = 0;
            for entry in entries {
                let path = entry.expect("a corpus entry").path();
                let data = std::fs::read(&path).expect("a corpus file");
                target(&data);
                count += 1;
            }
            assert!(count >= 5, "the {name} corpus has only {count} inputs");
            println!("{name}: {count} inputs");
        }
    }
}
