//! Image previews on moto: a presigned PUT lands in the files bucket, S3 (moto) notifies the
//! uploads queue, image-preview reads the object and stores its size and a small JPEG, and
//! readers get that preview through GET_DOWNLOAD_URL `variant: "preview"`. Hostile images (a
//! decompression bomb, a truncated file, a PDF calling itself a PNG) get a clear reason and no
//! preview object.

use std::io::Cursor;

use image::{ImageBuffer, ImageFormat, Rgb, RgbImage};
use messaging_core::Role;
use serde_json::{json, Value};
use test_support::{http, Client, TestStack};

fn png(width: u32, height: u32) -> Vec<u8> {
    let image: RgbImage = ImageBuffer::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A 1 × 1 PNG whose header says 100,000 × 100,000 (CRC made right): a decompression bomb's
/// first bytes.
fn bomb() -> Vec<u8> {
    let mut png = png(1, 1);
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let mut crc = 0xFFFF_FFFFu32;
    for &b in &png[12..29] {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    png[29..33].copy_from_slice(&(!crc).to_be_bytes());
    png
}

async fn send(stack: &TestStack, who: &Client, frame: Value) -> Value {
    stack.send(who, &frame).await.1
}

/// Registers `id` as `mime` and uploads `bytes` through its presigned PUT.
async fn upload(stack: &TestStack, who: &Client, id: &str, mime: &str, bytes: &[u8]) {
    let registered = send(stack, who, json!({ "type": "REGISTER_FILE", "fileId": id, "name": format!("{id}.png"), "size": bytes.len(), "mimeType": mime })).await;
    assert_eq!(registered["type"], "FILE", "{registered}");
    http::put_presigned(&registered["upload"], bytes).await;
}

async fn preview_url(stack: &TestStack, who: &Client, id: &str) -> Value {
    send(
        stack,
        who,
        json!({ "type": "GET_DOWNLOAD_URL", "fileId": id, "variant": "preview" }),
    )
    .await
}

async fn objects_under(stack: &TestStack, prefix: &str) -> Vec<String> {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&stack.sdk)
            .force_path_style(true)
            .build(),
    );
    s3.list_objects_v2()
        .bucket(&stack.bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn an_uploaded_image_gets_its_size_and_a_preview_that_members_read() {
    let stack = TestStack::new().await;
    let alice = stack.connect_as("acme", "alice", Role::User).await;
    let bob = stack.connect_as("acme", "bob", Role::User).await;
    let carol = stack.connect_as("acme", "carol", Role::User).await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let stranger = stack.connect_as("globex", "owner", Role::Owner).await;
    assert_eq!(
        send(
            &stack,
            &owner,
            test_support::create("launch", "project", &["alice", "bob"])
        )
        .await["type"],
        "ACK"
    );

    upload(&stack, &alice, "photo", "image/png", &png(1200, 900)).await;
    // Before the notification is handled: no preview yet, and the answer says so.
    let early = preview_url(&stack, &alice, "photo").await;
    assert_eq!(early["code"], "PREVIEW_NOT_AVAILABLE", "{early}");
    assert!(early["message"].as_str().unwrap().contains("yet"));

    let responses = stack.pump_uploads().await;
    assert!(!responses.is_empty(), "moto notified the uploads queue");
    assert!(responses.iter().all(|r| r.batch_item_failures.is_empty()));
    let file = send(
        &stack,
        &alice,
        json!({ "type": "GET_FILE", "fileId": "photo" }),
    )
    .await;
    assert_eq!(
        file["file"]["image"],
        json!({ "preview": "ready", "width": 1200, "height": 900 }),
        "{file}"
    );
    assert_eq!(
        objects_under(&stack, "previews/acme/").await,
        ["previews/acme/photo.jpg"]
    );

    // Posted as an image: the message carries the size and says there is a preview.
    let posted = send(&stack, &alice, json!({ "type": "CHAT_MESSAGE", "conversationId": "launch", "content": { "type": "image", "text": "the venue", "attachments": [{ "fileId": "photo" }] } })).await;
    assert_eq!(posted["type"], "ACK", "{posted}");
    let history = send(
        &stack,
        &bob,
        json!({ "type": "GET_HISTORY", "conversationId": "launch" }),
    )
    .await;
    let attachment = &history["messages"][0]["content"]["attachments"][0];
    assert_eq!(
        (
            attachment["width"].as_u64(),
            attachment["height"].as_u64(),
            attachment["preview"].as_bool()
        ),
        (Some(1200), Some(900), Some(true)),
        "{attachment}"
    );

    // bob (a member, read without download) gets the preview, a JPEG of at most 320 a side,
    // but not the original; carol (no member) and the other tenant get FILE_NOT_FOUND.
    let url = preview_url(&stack, &bob, "photo").await;
    assert_eq!(url["type"], "FILE_URL", "{url}");
    let (status, bytes) = http::request("GET", url["url"].as_str().unwrap(), &[], b"").await;
    assert_eq!(status, 200);
    let preview = image::load_from_memory(&bytes).unwrap();
    assert_eq!(image::guess_format(&bytes).unwrap(), ImageFormat::Jpeg);
    assert_eq!((preview.width(), preview.height()), (320, 240));
    let original = send(
        &stack,
        &bob,
        json!({ "type": "GET_DOWNLOAD_URL", "fileId": "photo" }),
    )
    .await;
    assert_eq!(original["code"], "FORBIDDEN");
    for outsider in [&carol, &stranger] {
        assert_eq!(
            preview_url(&stack, outsider, "photo").await["code"],
            "FILE_NOT_FOUND"
        );
    }
    // A document gets no preview, with the reason.
    upload(
        &stack,
        &alice,
        "notes",
        "application/pdf",
        b"%PDF-1.7 notes",
    )
    .await;
    stack.pump_uploads().await;
    let none = preview_url(&stack, &alice, "notes").await;
    assert_eq!(none["code"], "PREVIEW_NOT_AVAILABLE");
    assert!(
        none["message"]
            .as_str()
            .unwrap()
            .contains("gets no preview"),
        "{none}"
    );
}

#[tokio::test]
async fn hostile_images_are_refused_with_the_reason_and_no_preview_is_stored() {
    let stack = TestStack::new().await;
    let alice = stack.connect_as("acme", "alice", Role::User).await;
    let truncated = {
        let whole = png(800, 600);
        whole[..whole.len() / 3].to_vec()
    };
    upload(&stack, &alice, "bomb", "image/png", &bomb()).await;
    upload(&stack, &alice, "truncated", "image/png", &truncated).await;
    upload(
        &stack,
        &alice,
        "liar",
        "image/png",
        b"%PDF-1.7 not an image at all",
    )
    .await;
    let responses = stack.pump_uploads().await;
    assert!(
        responses.iter().all(|r| r.batch_item_failures.is_empty()),
        "refusals are not retried"
    );
    for (id, says) in [
        ("bomb", "100000 × 100000 pixels"),
        ("truncated", "cannot be decoded"),
        ("liar", "not a PNG, JPEG, GIF or WebP"),
    ] {
        let file = send(&stack, &alice, json!({ "type": "GET_FILE", "fileId": id })).await;
        assert_eq!(file["file"]["image"]["preview"], "refused", "{file}");
        assert!(
            file["file"]["image"]["reason"]
                .as_str()
                .unwrap()
                .contains(says),
            "{id}: {file}"
        );
        assert!(
            file["file"]["image"].get("width").is_none(),
            "a refused header is not trusted"
        );
        let url = preview_url(&stack, &alice, id).await;
        assert_eq!(url["code"], "PREVIEW_NOT_AVAILABLE");
        assert!(url["message"].as_str().unwrap().contains(says), "{url}");
    }
    assert!(
        objects_under(&stack, "previews/acme/").await.is_empty(),
        "no preview stored"
    );

    // A good image, then a hostile new version of it: the old preview goes with it.
    upload(&stack, &alice, "avatar", "image/png", &png(64, 64)).await;
    stack.pump_uploads().await;
    assert_eq!(objects_under(&stack, "previews/acme/").await.len(), 1);
    let bytes = bomb();
    let next = send(
        &stack,
        &alice,
        json!({ "type": "GET_UPLOAD_URL", "fileId": "avatar", "size": bytes.len() }),
    )
    .await;
    http::put_presigned(&next, &bytes).await;
    stack.pump_uploads().await;
    assert!(objects_under(&stack, "previews/acme/").await.is_empty());
    assert_eq!(
        preview_url(&stack, &alice, "avatar").await["code"],
        "PREVIEW_NOT_AVAILABLE"
    );
}
