//! File sharing and comments through the real file-share and broadcast handlers, moto's
//! DynamoDB, SQS and S3: shares gate every action, comments reach every reader live,
//! presigned URLs move real bytes.

use aws_sdk_dynamodb::types::AttributeValue;
use messaging_aws::table;
use messaging_core::Role;
use serde_json::{json, Value};
use test_support::{conversation, frames_for, http, keys, user, Client, TestStack};

async fn send(stack: &TestStack, who: &Client, frame: Value) -> Value {
    stack.send(who, &frame).await.1
}

fn code(frame: &Value) -> String {
    frame["code"]
        .as_str()
        .or(frame["type"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn share(user: &str, permissions: Value) -> Value {
    json!({ "type": "SHARE_FILE", "fileId": "contract", "userId": user, "permissions": permissions })
}

async fn presigned(url: &Value, body: &[u8]) -> (u16, Vec<u8>) {
    // An upload URL signs its exact length: S3 takes no other body (moto does not check it).
    if let Some(length) = url["headers"]["content-length"].as_str() {
        assert_eq!(
            length,
            body.len().to_string(),
            "the body is not the signed length"
        );
    }
    let headers: Vec<(String, String)> = url["headers"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.as_str() != "content-length") // the transport sends it
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    http::request(
        url["method"].as_str().unwrap(),
        url["url"].as_str().unwrap(),
        &headers,
        body,
    )
    .await
}

#[tokio::test]
async fn shares_gate_every_file_action_and_comments_reach_every_reader_live() {
    let stack = TestStack::new().await;
    let olga = stack.connect_as("acme", "olga", Role::User).await;
    let bob = stack.connect_as("acme", "bob", Role::User).await;
    let eve = stack.connect_as("acme", "eve", Role::User).await;
    let admin = stack.connect_as("acme", "admin", Role::Admin).await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let stranger = stack.connect_as("globex", "owner", Role::Owner).await;

    // Olga registers and uploads a file through the presigned PUT.
    let registered = send(&stack, &olga, json!({ "type": "REGISTER_FILE", "fileId": "contract", "name": "Contract v2.pdf", "size": 11, "mimeType": "application/pdf" })).await;
    assert_eq!(registered["type"], "FILE", "{registered}");
    assert_eq!(registered["file"]["channel"], "client:acme:file:contract");
    assert_eq!(
        registered["permissions"],
        json!({ "read": true, "comment": true, "edit": true, "download": true })
    );
    let upload = &registered["upload"];
    assert_eq!(upload["method"], "PUT");
    assert!(
        upload["url"]
            .as_str()
            .unwrap()
            .contains("tenants/acme/files/contract"),
        "{upload}"
    );
    assert_eq!(presigned(upload, b"%PDF-1.7 ok").await.0, 200);
    let again = send(&stack, &olga, json!({ "type": "REGISTER_FILE", "fileId": "contract", "name": "x", "size": 1, "mimeType": "text/plain" })).await;
    assert_eq!(code(&again), "FILE_EXISTS");

    // Not shared: bob sees nothing of it (as if it did not exist); nothing is written.
    let before = stack.snapshot().await;
    for frame in [
        json!({ "type": "GET_FILE", "fileId": "contract" }),
        json!({ "type": "FILE_COMMENT", "fileId": "contract", "content": "hi" }),
        json!({ "type": "GET_DOWNLOAD_URL", "fileId": "contract" }),
        json!({ "type": "LIST_FILE_COMMENTS", "fileId": "contract" }),
        share("eve", json!({ "read": true })),
    ] {
        assert_eq!(
            code(&send(&stack, &bob, frame.clone()).await),
            "FILE_NOT_FOUND",
            "{frame}"
        );
        assert_eq!(
            code(&send(&stack, &stranger, frame.clone()).await),
            "FILE_NOT_FOUND",
            "other tenant: {frame}"
        );
    }
    assert_eq!(stack.snapshot().await, before);

    // Read only: sees it, may not comment, download or share.
    assert_eq!(
        code(&send(&stack, &olga, share("bob", json!({ "read": true }))).await),
        "ACK"
    );
    let got = send(
        &stack,
        &bob,
        json!({ "type": "GET_FILE", "fileId": "contract" }),
    )
    .await;
    assert_eq!(
        got["permissions"],
        json!({ "read": true, "comment": false, "edit": false, "download": false })
    );
    for frame in [
        json!({ "type": "FILE_COMMENT", "fileId": "contract", "content": "hi" }),
        json!({ "type": "GET_DOWNLOAD_URL", "fileId": "contract" }),
        json!({ "type": "GET_UPLOAD_URL", "fileId": "contract" }),
        share("eve", json!({ "read": true })),
    ] {
        let (status, refused) = stack.send(&bob, &frame).await;
        assert_eq!(
            (status, code(&refused)),
            (403, "FORBIDDEN".to_owned()),
            "{frame}"
        );
    }
    stack.pump().await;
    let shared = frames_for(&stack.gateway.take(), &bob);
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert_eq!(
        (shared[0]["type"].as_str(), shared[0]["sharedBy"].as_str()),
        (Some("FILE_SHARED"), Some("olga"))
    );
    assert_eq!(shared[0]["file"]["name"], "Contract v2.pdf");

    // Comment + download: a positioned comment goes live to the owner, staff and readers.
    assert_eq!(
        code(
            &send(
                &stack,
                &olga,
                share("bob", json!({ "comment": true, "download": true }))
            )
            .await
        ),
        "ACK"
    );
    stack.pump().await;
    stack.gateway.take();
    let commented = send(&stack, &bob, json!({ "type": "FILE_COMMENT", "fileId": "contract", "content": "Sign <here>", "position": { "page": 2, "x": 0.25, "y": 0.8 } })).await;
    assert_eq!(code(&commented), "ACK", "{commented}");
    stack.pump().await;
    let deliveries = stack.gateway.take();
    for reader in [&olga, &admin, &owner] {
        let frames = frames_for(&deliveries, reader);
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["type"], "FILE_COMMENT");
        assert_eq!(frames[0]["comment"]["content"], "Sign <here>");
        assert_eq!(
            frames[0]["comment"]["position"],
            json!({ "page": 2, "x": 0.25, "y": 0.8 })
        );
    }
    for outsider in [&bob, &eve, &stranger] {
        assert!(frames_for(&deliveries, outsider).is_empty(), "{outsider:?}");
    }
    let first = send(
        &stack,
        &olga,
        json!({ "type": "LIST_FILE_COMMENTS", "fileId": "contract" }),
    )
    .await;
    let first_id = first["comments"][0]["commentId"]
        .as_str()
        .unwrap()
        .to_owned();
    // The commenter's connection is not sent its own FILE_COMMENT: the ACK names the comment.
    assert_eq!(commented["commentId"], first_id.as_str(), "{commented}");
    assert_eq!(commented["fileId"], "contract");
    let reply = send(&stack, &olga, json!({ "type": "FILE_COMMENT", "fileId": "contract", "content": "Done", "parentCommentId": first_id })).await;
    assert_eq!(code(&reply), "ACK");
    let orphan = send(&stack, &olga, json!({ "type": "FILE_COMMENT", "fileId": "contract", "content": "?", "parentCommentId": "nope" })).await;
    assert_eq!(code(&orphan), "COMMENT_NOT_FOUND");
    let page = send(
        &stack,
        &bob,
        json!({ "type": "LIST_FILE_COMMENTS", "fileId": "contract", "limit": 1 }),
    )
    .await;
    assert_eq!(page["comments"][0]["content"], "Sign <here>");
    let next = send(&stack, &bob, json!({ "type": "LIST_FILE_COMMENTS", "fileId": "contract", "limit": 1, "cursor": page["nextCursor"] })).await;
    assert_eq!(
        (
            next["comments"][0]["content"].as_str(),
            next["comments"][0]["parentCommentId"].as_str()
        ),
        (Some("Done"), Some(first_id.as_str()))
    );
    let stolen = send(
        &stack,
        &olga,
        json!({ "type": "LIST_FILE_COMMENTS", "fileId": "contract", "cursor": page["nextCursor"] }),
    )
    .await;
    assert_eq!(code(&stolen), "INVALID_CURSOR");

    // Download: the presigned GET returns the uploaded bytes; no upload without edit.
    let url = send(
        &stack,
        &bob,
        json!({ "type": "GET_DOWNLOAD_URL", "fileId": "contract" }),
    )
    .await;
    assert_eq!(url["type"], "FILE_URL", "{url}");
    assert_eq!(presigned(&url, b"").await, (200, b"%PDF-1.7 ok".to_vec()));
    assert_eq!(
        code(
            &send(
                &stack,
                &bob,
                json!({ "type": "GET_UPLOAD_URL", "fileId": "contract" })
            )
            .await
        ),
        "FORBIDDEN"
    );
    // A new version of another size: the URL signs that length, and the file records it.
    let next = send(
        &stack,
        &olga,
        json!({ "type": "GET_UPLOAD_URL", "fileId": "contract", "size": 17 }),
    )
    .await;
    assert_eq!(next["headers"]["content-length"], "17", "{next}");
    assert_eq!(presigned(&next, b"%PDF-1.7 version2").await.0, 200);
    let file = send(
        &stack,
        &olga,
        json!({ "type": "GET_FILE", "fileId": "contract" }),
    )
    .await;
    assert_eq!(file["file"]["size"], 17);
    let too_big =
        json!({ "type": "GET_UPLOAD_URL", "fileId": "contract", "size": 6_000_000_000u64 });
    assert_eq!(code(&send(&stack, &olga, too_big).await), "INVALID_FIELD");

    // Sharing with someone offline queues an email notification instead of a live event.
    assert_eq!(
        code(&send(&stack, &admin, share("carol", json!({ "read": true }))).await),
        "ACK"
    );
    let items = stack.snapshot().await;
    let pending: Vec<_> = items
        .iter()
        .filter(|(k, _)| {
            k.starts_with(&keys("acme").prefix(|k| k.notifications_prefix(&user("carol"))))
        })
        .collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].1["kind"].as_s().unwrap(), "FILE_SHARED");
    assert_eq!(
        pending[0].1[table::GSI1PK].as_s().unwrap(),
        &keys("acme").value(|k| k.pending_gsi1pk(&user("carol")))
    );

    // Listing: shared files for users, every file of the tenant for OWNER/ADMIN.
    send(&stack, &owner, json!({ "type": "REGISTER_FILE", "fileId": "board-minutes", "name": "minutes.txt", "size": 3, "mimeType": "text/plain" })).await;
    let names = |frame: &Value| -> Vec<String> {
        frame["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["fileId"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&send(&stack, &bob, json!({ "type": "LIST_FILES" })).await),
        ["contract"]
    );
    assert_eq!(
        names(&send(&stack, &admin, json!({ "type": "LIST_FILES" })).await),
        ["board-minutes", "contract"]
    );
    assert_eq!(
        names(&send(&stack, &eve, json!({ "type": "LIST_FILES" })).await),
        Vec::<String>::new()
    );
    assert_eq!(
        names(&send(&stack, &stranger, json!({ "type": "LIST_FILES" })).await),
        Vec::<String>::new()
    );

    // Revoking: bob is told, and the file disappears for him.
    stack.pump().await;
    stack.gateway.take();
    assert_eq!(
        code(
            &send(
                &stack,
                &olga,
                json!({ "type": "REVOKE_FILE_SHARE", "fileId": "contract", "userId": "bob" })
            )
            .await
        ),
        "ACK"
    );
    assert_eq!(
        code(
            &send(
                &stack,
                &olga,
                json!({ "type": "REVOKE_FILE_SHARE", "fileId": "contract", "userId": "bob" })
            )
            .await
        ),
        "SHARE_NOT_FOUND"
    );
    assert_eq!(
        code(
            &send(
                &stack,
                &owner,
                json!({ "type": "REVOKE_FILE_SHARE", "fileId": "contract", "userId": "olga" })
            )
            .await
        ),
        "INVALID_FIELD"
    );
    stack.pump().await;
    assert_eq!(
        frames_for(&stack.gateway.take(), &bob),
        [json!({ "type": "FILE_SHARE_REVOKED", "fileId": "contract", "userId": "bob" })]
    );
    assert_eq!(
        code(
            &send(
                &stack,
                &bob,
                json!({ "type": "GET_FILE", "fileId": "contract" })
            )
            .await
        ),
        "FILE_NOT_FOUND"
    );
}

/// A file posted into a conversation: its members read it (download only when the poster
/// allows it) while they are members; nobody else, in the tenant or outside it, learns it is
/// there; a file shared with you is not yours to pass on.
#[tokio::test]
async fn files_posted_into_a_conversation_are_read_by_its_members_only() {
    let stack = TestStack::new().await;
    let olga = stack.connect_as("acme", "olga", Role::User).await;
    let bob = stack.connect_as("acme", "bob", Role::User).await;
    let carol = stack.connect_as("acme", "carol", Role::User).await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let stranger = stack.connect_as("globex", "olga", Role::Owner).await;
    for (id, members) in [
        ("deal", json!(["olga", "bob"])),
        ("side", json!(["bob", "carol"])),
    ] {
        let created = send(&stack, &owner, json!({ "type": "CREATE_CONVERSATION", "conversationId": id, "kind": "project", "members": members })).await;
        assert_eq!(code(&created), "ACK", "{created}");
    }
    let created = send(
        &stack,
        &stranger,
        json!({ "type": "CREATE_CONVERSATION", "conversationId": "deal", "kind": "project" }),
    )
    .await;
    assert_eq!(code(&created), "ACK", "{created}");
    for (id, name, mime) in [
        ("contract", "Contract.pdf", "application/pdf"),
        ("photo", "site.png", "image/png"),
    ] {
        let registered = send(&stack, &olga, json!({ "type": "REGISTER_FILE", "fileId": id, "name": name, "size": 11, "mimeType": mime })).await;
        assert_eq!(code(&registered), "FILE", "{registered}");
    }
    let get = |who, file: &str| {
        let frame = json!({ "type": "GET_FILE", "fileId": file });
        let stack = &stack;
        async move { send(stack, who, frame).await }
    };
    let url = |who, file: &str| {
        let frame = json!({ "type": "GET_DOWNLOAD_URL", "fileId": file });
        let stack = &stack;
        async move { send(stack, who, frame).await }
    };
    let post = |who, conversation: &str, kind: &str, attachments: Value, id: &str| {
        let frame = json!({ "type": "CHAT_MESSAGE", "conversationId": conversation, "clientMessageId": id,
            "content": { "type": kind, "text": "", "attachments": attachments } });
        let stack = &stack;
        async move { send(stack, who, frame).await }
    };
    assert_eq!(
        code(&get(&bob, "contract").await),
        "FILE_NOT_FOUND",
        "not posted yet"
    );

    // Olga posts the contract (read only) into "deal": bob is told of it with its metadata.
    stack.pump().await;
    stack.gateway.take();
    let posted = post(
        &olga,
        "deal",
        "file",
        json!([{ "fileId": "contract" }]),
        "m1",
    )
    .await;
    assert_eq!(code(&posted), "ACK", "{posted}");
    stack.pump().await;
    let deliveries = stack.gateway.take();
    let to_bob = frames_for(&deliveries, &bob);
    assert_eq!(to_bob.len(), 1, "{to_bob:?}");
    assert_eq!(to_bob[0]["data"]["content"]["type"], "file");
    assert_eq!(
        to_bob[0]["data"]["content"]["attachments"],
        json!([{ "fileId": "contract", "name": "Contract.pdf", "size": 11, "mimeType": "application/pdf" }]),
        "metadata, never a URL"
    );
    let seen = get(&bob, "contract").await;
    assert_eq!(code(&seen), "FILE", "{seen}");
    assert_eq!(
        seen["permissions"],
        json!({ "read": true, "comment": false, "edit": false, "download": false })
    );
    assert_eq!(
        code(&url(&bob, "contract").await),
        "FORBIDDEN",
        "download was not allowed"
    );
    for outsider in [&carol, &stranger] {
        assert_eq!(code(&get(outsider, "contract").await), "FILE_NOT_FOUND");
        assert_eq!(code(&url(outsider, "contract").await), "FILE_NOT_FOUND");
    }

    // The photo with download allowed; a later post without it does not take it away.
    let posted = post(
        &olga,
        "deal",
        "image",
        json!([{ "fileId": "photo", "download": true }]),
        "m2",
    )
    .await;
    assert_eq!(code(&posted), "ACK", "{posted}");
    assert_eq!(code(&url(&bob, "photo").await), "FILE_URL");
    let posted = post(&olga, "deal", "file", json!([{ "fileId": "photo" }]), "m3").await;
    assert_eq!(code(&posted), "ACK", "{posted}");
    assert_eq!(code(&url(&bob, "photo").await), "FILE_URL");

    // Refusals: a PDF as an image; bob passing on a file he was only shown; carol and the other
    // tenant posting a file they cannot see (as if it did not exist).
    let refused = post(
        &olga,
        "deal",
        "image",
        json!([{ "fileId": "contract" }]),
        "m4",
    )
    .await;
    assert_eq!(code(&refused), "INVALID_FIELD", "{refused}");
    let refused = post(
        &bob,
        "side",
        "file",
        json!([{ "fileId": "contract" }]),
        "m5",
    )
    .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let refused = post(
        &carol,
        "side",
        "file",
        json!([{ "fileId": "contract" }]),
        "m6",
    )
    .await;
    assert_eq!(code(&refused), "FILE_NOT_FOUND", "{refused}");
    let refused = post(
        &stranger,
        "deal",
        "file",
        json!([{ "fileId": "contract" }]),
        "m7",
    )
    .await;
    assert_eq!(code(&refused), "FILE_NOT_FOUND", "{refused}");
    let refused = send(&stack, &olga, json!({ "type": "CHAT_MESSAGE", "conversationId": "deal", "content": { "type": "system", "text": "Invoice paid" } })).await;
    assert_eq!(code(&refused), "INVALID_FIELD", "{refused}");

    // An edit changes the caption; the type and files stay.
    let edited = send(&stack, &olga, json!({ "type": "EDIT_MESSAGE", "conversationId": "deal", "seq": 1, "content": { "text": "The contract, signed" } })).await;
    assert_eq!(code(&edited), "ACK", "{edited}");
    let history = send(
        &stack,
        &bob,
        json!({ "type": "GET_HISTORY", "conversationId": "deal" }),
    )
    .await;
    let first = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["seq"] == 1)
        .unwrap()
        .clone();
    assert_eq!(first["content"]["text"], "The contract, signed");
    assert_eq!(first["content"]["type"], "file");
    assert_eq!(first["content"]["attachments"][0]["fileId"], "contract");

    // One grant per file and conversation, whatever the number of posts; none for refusals.
    let snapshot = stack.snapshot().await;
    let acme = keys("acme");
    let file = |id: &str| messaging_core::FileId::parse(id).unwrap();
    let photo_grants = acme.prefix(|k| k.file_grants_prefix(&file("photo")));
    let grants: Vec<_> = snapshot
        .keys()
        .filter(|k| k.starts_with(&photo_grants))
        .collect();
    assert_eq!(
        grants,
        [&acme.name(|k| k.file_grant(&file("photo"), &conversation("deal")))]
    );
    assert_eq!(snapshot[grants[0]]["download"], AttributeValue::Bool(true));
    assert!(!snapshot
        .contains_key(&acme.name(|k| k.file_grant(&file("contract"), &conversation("side")))));

    // Removed from the conversation, bob can no longer read what was posted there.
    let removed = send(
        &stack,
        &owner,
        json!({ "type": "REMOVE_MEMBER", "conversationId": "deal", "userId": "bob" }),
    )
    .await;
    assert_eq!(code(&removed), "ACK", "{removed}");
    assert_eq!(code(&get(&bob, "contract").await), "FILE_NOT_FOUND");
    assert_eq!(code(&url(&bob, "photo").await), "FILE_NOT_FOUND");
}
