//! The access matrix: every client action × OWNER, ADMIN, USER (a member, and the file's
//! owner), a USER who is not a member (and has no share), and an OWNER of another tenant.
//! Each cell is allowed (its answer type) or refused with its error code, and a refused cell
//! writes nothing (table snapshot before and after). The matrix is printed as Markdown.

use messaging_core::Role;
use serde_json::{json, Value};
use test_support::{chat, create, Client, TestStack};

const ACTORS: [&str; 5] = [
    "OWNER",
    "ADMIN",
    "USER (member)",
    "USER (non-member)",
    "other tenant",
];

type Frame = fn(usize) -> Value;

fn conv(kind: &str, extra: Value) -> Value {
    let mut frame = json!({ "type": kind, "conversationId": "c" });
    frame
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    frame
}

fn file(kind: &str, extra: Value) -> Value {
    let mut frame = json!({ "type": kind, "fileId": "f" });
    frame
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    frame
}

/// (operation, frame for actor i, expected answer per actor).
fn operations() -> Vec<(&'static str, Frame, [&'static str; 5])> {
    const NAM: &str = "NOT_A_MEMBER";
    const CNF: &str = "CONVERSATION_NOT_FOUND";
    const FNF: &str = "FILE_NOT_FOUND";
    const NO: &str = "FORBIDDEN";
    vec![
        (
            "CHAT_MESSAGE",
            |_| chat("c", "matrix hello"),
            ["ACK", "ACK", "ACK", NAM, CNF],
        ),
        (
            "CHAT_MESSAGE (thread reply)",
            |_| {
                conv(
                    "CHAT_MESSAGE",
                    json!({ "parentSeq": 1, "content": { "text": "matrix reply" } }),
                )
            },
            ["ACK", "ACK", "ACK", NAM, CNF],
        ),
        (
            "EDIT_MESSAGE (USER's message)",
            |_| {
                conv(
                    "EDIT_MESSAGE",
                    json!({ "seq": 1, "content": { "text": "edited" } }),
                )
            },
            [NO, NO, "ACK", NAM, CNF],
        ),
        (
            "DELETE_MESSAGE (USER's message)",
            |i| conv("DELETE_MESSAGE", json!({ "seq": 2 + i })),
            ["ACK", NO, "ACK", NAM, CNF],
        ),
        (
            "ADD_REACTION",
            |_| conv("ADD_REACTION", json!({ "seq": 1, "emoji": "👍" })),
            ["ACK", "ACK", "ACK", NAM, CNF],
        ),
        (
            "REMOVE_REACTION",
            |_| conv("REMOVE_REACTION", json!({ "seq": 1, "emoji": "👍" })),
            ["ACK", "ACK", "ACK", NAM, CNF],
        ),
        (
            "TYPING_START",
            |_| conv("TYPING_START", json!({})),
            ["(none)", "(none)", "(none)", NAM, CNF],
        ),
        (
            "CREATE_CONVERSATION",
            |i| json!({ "type": "CREATE_CONVERSATION", "conversationId": format!("new-{i}"), "kind": "project", "members": ["uma"] }),
            ["ACK", "ACK", NO, NO, "ACK (own tenant)"],
        ),
        (
            "JOIN_CONVERSATION (project)",
            |_| conv("JOIN_CONVERSATION", json!({})),
            ["ACK", "ACK", "ACK", NO, CNF],
        ),
        (
            "ADD_MEMBERS",
            |i| conv("ADD_MEMBERS", json!({ "members": [format!("added-{i}")] })),
            ["ACK", "ACK", NO, NO, CNF],
        ),
        (
            "REMOVE_MEMBER (someone else)",
            |i| conv("REMOVE_MEMBER", json!({ "userId": format!("x{i}") })),
            ["ACK", "ACK", NO, NO, CNF],
        ),
        (
            "LIST_CONVERSATIONS",
            |_| json!({ "type": "LIST_CONVERSATIONS" }),
            [
                "CONVERSATIONS",
                "CONVERSATIONS",
                "CONVERSATIONS",
                "CONVERSATIONS (without c)",
                "CONVERSATIONS (without c)",
            ],
        ),
        (
            "GET_HISTORY",
            |_| conv("GET_HISTORY", json!({})),
            ["HISTORY", "HISTORY", "HISTORY", NAM, CNF],
        ),
        (
            "GET_THREAD",
            |_| conv("GET_THREAD", json!({ "seq": 1 })),
            ["THREAD", "THREAD", "THREAD", NAM, CNF],
        ),
        (
            "SEARCH",
            |_| json!({ "type": "SEARCH", "query": "matrix" }),
            [
                "SEARCH_RESULTS",
                "SEARCH_RESULTS",
                "SEARCH_RESULTS",
                "SEARCH_RESULTS (none)",
                "SEARCH_RESULTS (none)",
            ],
        ),
        (
            "MARK_READ",
            |_| conv("MARK_READ", json!({ "seq": 1 })),
            ["ACK", "ACK", "ACK", NAM, CNF],
        ),
        (
            "GET_PRESENCE",
            |_| conv("GET_PRESENCE", json!({})),
            ["PRESENCE_LIST", "PRESENCE_LIST", "PRESENCE_LIST", NAM, CNF],
        ),
        (
            "SET_PRESENCE",
            |_| json!({ "type": "SET_PRESENCE", "status": "away" }),
            ["ACK", "ACK", "ACK", "ACK", "ACK"],
        ),
        (
            "REGISTER_FILE",
            |i| json!({ "type": "REGISTER_FILE", "fileId": format!("own-{i}"), "name": "a.txt", "size": 1, "mimeType": "text/plain" }),
            ["FILE", "FILE", "FILE", "FILE", "FILE"],
        ),
        (
            "GET_FILE (USER's file)",
            |_| file("GET_FILE", json!({})),
            ["FILE", "FILE", "FILE", FNF, FNF],
        ),
        (
            "FILE_COMMENT",
            |_| {
                file(
                    "FILE_COMMENT",
                    json!({ "content": "matrix note", "position": { "page": 1, "x": 0.5, "y": 0.5 } }),
                )
            },
            ["ACK", "ACK", "ACK", FNF, FNF],
        ),
        (
            "LIST_FILE_COMMENTS",
            |_| file("LIST_FILE_COMMENTS", json!({})),
            ["FILE_COMMENTS", "FILE_COMMENTS", "FILE_COMMENTS", FNF, FNF],
        ),
        (
            "SHARE_FILE",
            |i| {
                file(
                    "SHARE_FILE",
                    json!({ "userId": format!("reader-{i}"), "permissions": { "read": true } }),
                )
            },
            ["ACK", "ACK", "ACK", FNF, FNF],
        ),
        (
            "REVOKE_FILE_SHARE",
            |i| file("REVOKE_FILE_SHARE", json!({ "userId": format!("s{i}") })),
            ["ACK", "ACK", "ACK", FNF, FNF],
        ),
        (
            "GET_DOWNLOAD_URL",
            |_| file("GET_DOWNLOAD_URL", json!({})),
            ["FILE_URL", "FILE_URL", "FILE_URL", FNF, FNF],
        ),
        (
            "GET_UPLOAD_URL",
            |_| file("GET_UPLOAD_URL", json!({})),
            ["FILE_URL", "FILE_URL", "FILE_URL", FNF, FNF],
        ),
        (
            "LIST_FILES",
            |_| json!({ "type": "LIST_FILES" }),
            [
                "FILES",
                "FILES",
                "FILES",
                "FILES (without f)",
                "FILES (without f)",
            ],
        ),
    ]
}

/// What a cell answered, in the matrix's words.
fn outcome(answer: &Value) -> String {
    if answer.is_null() {
        return "(none)".into();
    }
    if answer["type"] == "ERROR" {
        return answer["code"].as_str().unwrap().to_owned();
    }
    answer["type"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_action_by_every_role_is_allowed_or_refused_with_nothing_written() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let admin = stack.connect_as("acme", "admin", Role::Admin).await;
    let uma = stack.connect_as("acme", "uma", Role::User).await;
    let nemo = stack.connect_as("acme", "nemo", Role::User).await;
    let other = stack.connect_as("globex", "owner", Role::Owner).await;
    let actors: [&Client; 5] = [&owner, &admin, &uma, &nemo, &other];

    // The conversation c (owner, admin, uma, and x0..x4 to be removed); uma's messages 1..7.
    let members: Vec<String> = ["admin", "uma"]
        .iter()
        .map(|s| s.to_string())
        .chain((0..5).map(|i| format!("x{i}")))
        .collect();
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    assert_eq!(
        stack
            .send(&owner, &create("c", "project", &members))
            .await
            .1["type"],
        "ACK"
    );
    for i in 1..=7 {
        assert_eq!(
            stack
                .send(&uma, &chat("c", &format!("matrix seed {i}")))
                .await
                .1["type"],
            "ACK"
        );
    }
    // uma's file f, shared with s0..s4 (to be revoked).
    let registered = stack.send(&uma, &json!({ "type": "REGISTER_FILE", "fileId": "f", "name": "f.pdf", "size": 10, "mimeType": "application/pdf" })).await.1;
    assert_eq!(registered["type"], "FILE");
    for i in 0..5 {
        let frame = json!({ "type": "SHARE_FILE", "fileId": "f", "userId": format!("s{i}"), "permissions": { "read": true } });
        assert_eq!(stack.send(&uma, &frame).await.1["type"], "ACK");
    }

    let mut table = String::from("| action | ");
    table.push_str(&ACTORS.join(" | "));
    table.push_str(" |\n|---|---|---|---|---|---|\n");
    let mut mismatches = Vec::new();
    for (name, frame, expected) in operations() {
        let mut row = format!("| {name} |");
        for (i, actor) in actors.iter().enumerate() {
            let before = stack.snapshot().await;
            let (_, answer) = stack.send(actor, &frame(i)).await;
            let got = outcome(&answer);
            let want = expected[i];
            if want.split(" (").next() != Some(got.as_str()) {
                mismatches.push(format!(
                    "{name} by {}: expected {want}, got {answer}",
                    ACTORS[i]
                ));
            }
            if answer["type"] == "ERROR" {
                assert_eq!(
                    stack.snapshot().await,
                    before,
                    "{name} by {} was refused but wrote",
                    ACTORS[i]
                );
                row.push_str(&format!(" ✗ {got} |"));
            } else {
                row.push_str(&format!(" ✓ {} |", want));
            }
            // The refused-or-empty reads really are empty for outsiders.
            if i >= 3 {
                let text = answer.to_string();
                assert!(
                    !text.contains("matrix seed"),
                    "{name} by {} leaked messages: {text}",
                    ACTORS[i]
                );
                assert!(
                    !text.contains("\"fileId\":\"f\""),
                    "{name} by {} leaked the file: {text}",
                    ACTORS[i]
                );
                assert!(
                    !text.contains("\"conversationId\":\"c\"") || answer["type"] == "ERROR",
                    "{name} by {} leaked c: {text}",
                    ACTORS[i]
                );
            }
        }
        table.push_str(&row);
        table.push('\n');
    }
    println!("{table}");
    let out = format!("{}/target/test-output", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(format!("{out}/access-matrix.md"), &table).unwrap();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// A forged id, of the kinds an attacker tries.
#[derive(Clone, Copy, PartialEq)]
enum Forgery {
    /// An id that exists in another tenant (its conversation, file, comment, cursor, notification).
    Foreign,
    /// A channel naming another tenant.
    ForeignChannel,
    /// Key separators inside the id (`c#MSG#…`, `a:b`).
    Separators,
    /// One character over the limit.
    Oversized,
    /// A number, an array or an object where a string id goes.
    WrongType,
    /// An identity field in the body: `clientId`, `role`, `senderId`, …
    Identity,
}

const FORGERIES: [(Forgery, &str); 6] = [
    (Forgery::Foreign, "another tenant's id"),
    (Forgery::ForeignChannel, "another tenant's channel"),
    (Forgery::Separators, "id with separators"),
    (Forgery::Oversized, "oversized id"),
    (Forgery::WrongType, "wrong JSON type"),
    (Forgery::Identity, "identity field in body"),
];

/// What the other tenant (globex) owns, for foreign ids.
struct Foreign {
    cursor: String,
    comment: String,
    notification: String,
}

/// The field a frame's forged id goes in, and the frame around it.
struct Target {
    name: &'static str,
    /// The id field forged (`conversationId`, `fileId`, `cursor`, `parentCommentId`,
    /// `notificationIds`).
    field: &'static str,
    frame: Value,
}

fn targets() -> Vec<Target> {
    let on_conv = |kind: &'static str, extra: Value| Target {
        name: kind,
        field: "conversationId",
        frame: conv(kind, extra),
    };
    let on_file = |kind: &'static str, extra: Value| Target {
        name: kind,
        field: "fileId",
        frame: file(kind, extra),
    };
    vec![
        on_conv("CHAT_MESSAGE", json!({ "content": { "text": "forged" } })),
        on_conv(
            "EDIT_MESSAGE",
            json!({ "seq": 1, "content": { "text": "forged" } }),
        ),
        on_conv("DELETE_MESSAGE", json!({ "seq": 1 })),
        on_conv("ADD_REACTION", json!({ "seq": 1, "emoji": "👍" })),
        on_conv("REMOVE_REACTION", json!({ "seq": 1, "emoji": "👍" })),
        on_conv("TYPING_START", json!({})),
        on_conv("TYPING_STOP", json!({})),
        on_conv("JOIN_CONVERSATION", json!({})),
        on_conv("ADD_MEMBERS", json!({ "members": ["mallory"] })),
        on_conv("REMOVE_MEMBER", json!({ "userId": "uma" })),
        on_conv("GET_HISTORY", json!({})),
        on_conv("GET_THREAD", json!({ "seq": 1 })),
        on_conv("MARK_READ", json!({ "seq": 1 })),
        on_conv("GET_PRESENCE", json!({})),
        on_file("GET_FILE", json!({})),
        on_file("FILE_COMMENT", json!({ "content": "forged" })),
        on_file("LIST_FILE_COMMENTS", json!({})),
        on_file(
            "SHARE_FILE",
            json!({ "userId": "mallory", "permissions": { "read": true } }),
        ),
        on_file("REVOKE_FILE_SHARE", json!({ "userId": "s0" })),
        on_file("GET_DOWNLOAD_URL", json!({})),
        on_file("GET_UPLOAD_URL", json!({})),
        Target {
            name: "FILE_COMMENT (reply)",
            field: "parentCommentId",
            frame: file("FILE_COMMENT", json!({ "content": "forged reply" })),
        },
        Target {
            name: "GET_HISTORY (cursor)",
            field: "cursor",
            frame: conv("GET_HISTORY", json!({})),
        },
        Target {
            name: "LIST_CONVERSATIONS (cursor)",
            field: "cursor",
            frame: json!({ "type": "LIST_CONVERSATIONS" }),
        },
        Target {
            name: "SEARCH (cursor)",
            field: "cursor",
            frame: json!({ "type": "SEARCH", "query": "matrix" }),
        },
        Target {
            name: "LIST_FILES (cursor)",
            field: "cursor",
            frame: json!({ "type": "LIST_FILES" }),
        },
        Target {
            name: "MARK_NOTIFICATIONS_READ",
            field: "notificationIds",
            frame: json!({ "type": "MARK_NOTIFICATIONS_READ" }),
        },
    ]
}

/// The frame with its `field` forged, or `None` where the forgery does not apply.
fn forge(target: &Target, forgery: Forgery, foreign: &Foreign) -> Option<Value> {
    let mut frame = target.frame.clone();
    let object = frame.as_object_mut().unwrap();
    let long = "x".repeat(65);
    let value = match (forgery, target.field) {
        (Forgery::Foreign, "conversationId") => json!("g"),
        (Forgery::Foreign, "fileId") => json!("gf"),
        (Forgery::Foreign, "parentCommentId") => json!(foreign.comment),
        (Forgery::Foreign, "cursor") => json!(foreign.cursor),
        (Forgery::Foreign, "notificationIds") => json!([foreign.notification]),
        (Forgery::ForeignChannel, "conversationId") => {
            object.remove("conversationId");
            object.insert("channel".into(), json!("client:globex:project:g"));
            return Some(frame);
        }
        (Forgery::ForeignChannel, _) => return None,
        (Forgery::Separators, "cursor") => json!("eyJ0IjoiZ2xvYmV4In0#.AAAA"),
        (Forgery::Separators, "notificationIds") => json!(["n#USER#owner"]),
        (Forgery::Separators, _) => json!("c#MSG#000000000001"),
        (Forgery::Oversized, "cursor") => json!("A".repeat(1025)),
        (Forgery::Oversized, "notificationIds") => json!([long]),
        (Forgery::Oversized, _) => json!(long),
        (Forgery::WrongType, "notificationIds") => json!("not-a-list"),
        (Forgery::WrongType, "cursor") => json!({ "pk": "CLIENT#globex" }),
        (Forgery::WrongType, _) => json!(7),
        (Forgery::Identity, _) => {
            object.insert("clientId".into(), json!("globex"));
            object.insert("role".into(), json!("OWNER"));
            return Some(frame);
        }
        (Forgery::Foreign, _) => unreachable!("every field has a foreign id"),
    };
    object.insert(target.field.into(), value);
    Some(frame)
}

/// The code a forged frame must be refused with.
fn expected(target: &Target, forgery: Forgery, role: usize) -> &'static str {
    match forgery {
        Forgery::ForeignChannel => "CROSS_TENANT",
        // A cursor is opaque: any string that is not one we signed is refused as a cursor.
        Forgery::Separators | Forgery::Oversized if target.field == "cursor" => "INVALID_CURSOR",
        Forgery::Separators | Forgery::Oversized | Forgery::WrongType | Forgery::Identity => {
            "INVALID_FIELD"
        }
        Forgery::Foreign => match target.field {
            "conversationId" => match (target.name, role) {
                // A USER may not add members anywhere: refused before any read.
                ("ADD_MEMBERS", 2) => "FORBIDDEN",
                _ => "CONVERSATION_NOT_FOUND",
            },
            "fileId" => "FILE_NOT_FOUND",
            "parentCommentId" => "COMMENT_NOT_FOUND",
            "cursor" => "INVALID_CURSOR",
            // Marking another tenant's notification read: a no-op ACK (the id is looked up
            // under the caller's own key only), checked by the unchanged table.
            "notificationIds" => "ACK",
            _ => unreachable!(),
        },
    }
}

/// Every frame with an id × every forgery × OWNER, ADMIN, USER (a member): refused with its
/// code, the table unchanged, nothing delivered to anyone. Then the HTTP routes the same way.
#[tokio::test]
async fn forged_ids_in_every_frame_and_route_are_refused_changing_and_delivering_nothing() {
    let stack = TestStack::new().await;
    let owner = stack.connect_as("acme", "owner", Role::Owner).await;
    let admin = stack.connect_as("acme", "admin", Role::Admin).await;
    let uma = stack.connect_as("acme", "uma", Role::User).await;
    let actors: [&Client; 3] = [&owner, &admin, &uma];
    let roles = ["OWNER", "ADMIN", "USER"];
    assert_eq!(
        stack
            .send(&owner, &create("c", "project", &["admin", "uma"]))
            .await
            .1["type"],
        "ACK"
    );
    assert_eq!(
        stack.send(&uma, &chat("c", "matrix seed")).await.1["type"],
        "ACK"
    );
    let registered = stack.send(&uma, &json!({ "type": "REGISTER_FILE", "fileId": "f", "name": "f.pdf", "size": 10, "mimeType": "application/pdf" })).await.1;
    assert_eq!(registered["type"], "FILE");
    let share = json!({ "type": "SHARE_FILE", "fileId": "f", "userId": "s0", "permissions": { "read": true } });
    assert_eq!(stack.send(&uma, &share).await.1["type"], "ACK");

    // globex: a conversation g with messages, a file gf with a comment, a notification, and
    // a cursor issued to its owner.
    let g_owner = stack.connect_as("globex", "owner", Role::Owner).await;
    let g_user = stack.connect_as("globex", "gus", Role::User).await;
    assert_eq!(
        stack
            .send(&g_owner, &create("g", "project", &["gus"]))
            .await
            .1["type"],
        "ACK"
    );
    for text in ["globex one", "globex two @gus"] {
        assert_eq!(
            stack.send(&g_owner, &chat("g", text)).await.1["type"],
            "ACK"
        );
    }
    let page = stack
        .send(
            &g_owner,
            &json!({ "type": "GET_HISTORY", "conversationId": "g", "limit": 1 }),
        )
        .await
        .1;
    let cursor = page["nextCursor"].as_str().expect("a cursor").to_owned();
    let gf = json!({ "type": "REGISTER_FILE", "fileId": "gf", "name": "g.pdf", "size": 10, "mimeType": "application/pdf" });
    assert_eq!(stack.send(&g_owner, &gf).await.1["type"], "FILE");
    let comment = json!({ "type": "FILE_COMMENT", "fileId": "gf", "content": "globex note" });
    assert_eq!(stack.send(&g_owner, &comment).await.1["type"], "ACK");
    let listed = stack
        .send(
            &g_owner,
            &json!({ "type": "LIST_FILE_COMMENTS", "fileId": "gf" }),
        )
        .await
        .1;
    let comment_id = listed["comments"][0]["commentId"]
        .as_str()
        .unwrap_or_else(|| panic!("a comment id in {listed}"))
        .to_owned();
    stack.pump().await;
    // gus was mentioned while connected: a live notification, stored.
    let listed = stack
        .send(&g_user, &json!({ "type": "LIST_NOTIFICATIONS" }))
        .await
        .1;
    let notification = listed["notifications"][0]["notificationId"]
        .as_str()
        .unwrap_or_else(|| panic!("a notification in {listed}"))
        .to_owned();
    let foreign = Foreign {
        cursor,
        comment: comment_id,
        notification,
    };
    stack.gateway.take();

    let baseline = stack.snapshot().await;
    let mut cells = 0;
    let mut refused = 0;
    let mut mismatches = Vec::new();
    let mut table =
        String::from("| frame | forged | OWNER | ADMIN | USER |\n|---|---|---|---|---|\n");
    for target in targets() {
        for (forgery, forgery_name) in FORGERIES {
            let Some(frame) = forge(&target, forgery, &foreign) else {
                continue;
            };
            let mut row = format!("| {} | {forgery_name} |", target.name);
            for (role, actor) in actors.iter().enumerate() {
                let (_, answer) = stack.send(actor, &frame).await;
                stack.pump().await;
                let delivered = stack.gateway.take();
                let got = outcome(&answer);
                let want = expected(&target, forgery, role);
                cells += 1;
                refused += usize::from(answer["type"] == "ERROR");
                if got != want {
                    mismatches.push(format!(
                        "{} / {forgery_name} by {}: expected {want}, got {answer}",
                        target.name, roles[role]
                    ));
                }
                // No cell may change anything: every one is compared with the same table.
                assert_eq!(
                    stack.snapshot().await,
                    baseline,
                    "{} / {forgery_name} by {} changed the table",
                    target.name,
                    roles[role]
                );
                assert!(
                    delivered.is_empty(),
                    "{} / {forgery_name} by {} delivered {delivered:?}",
                    target.name,
                    roles[role]
                );
                let text = answer.to_string();
                assert!(
                    !text.contains("globex one") && !text.contains("globex note"),
                    "{} / {forgery_name} by {} leaked globex's data: {text}",
                    target.name,
                    roles[role]
                );
                row.push_str(&format!(" ✗ {got} |"));
            }
            table.push_str(&row);
            table.push('\n');
        }
    }

    // The HTTP API: each route × forged path id, foreign cursor, bad type, identity query.
    let routes = [
        "/conversations",
        "/conversations/{id}/messages",
        "/conversations/{id}/messages/1/thread",
        "/search?q=matrix",
    ];
    let http_forgeries: [(&str, &str); 6] = [
        ("another tenant's id", "id=g"),
        ("id with separators", "id=c%23MSG%23000000000001"),
        (
            "oversized id",
            "id=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ),
        ("another tenant's cursor", "cursor"),
        ("wrong type (limit)", "limit=many"),
        ("identity field in query", "clientId=globex"),
    ];
    for route in routes {
        for (forgery_name, forgery) in http_forgeries {
            let mut query: Vec<(String, String)> = Vec::new();
            if route.contains("?q=") {
                query.push(("q".into(), "matrix".into()));
            }
            let mut path = route.split('?').next().unwrap().to_owned();
            match forgery.split_once('=') {
                Some(("id", id)) if path.contains("{id}") => path = path.replace("{id}", id),
                Some(("id", _)) => continue,
                Some((name, value)) => query.push((name.into(), value.into())),
                None => query.push(("cursor".into(), foreign.cursor.clone())),
            }
            let path = path.replace("{id}", "c");
            let mut row = format!("| GET {route} | {forgery_name} |");
            for (role, actor) in actors.iter().enumerate() {
                let (status, answer) = http_get(&stack, actor, &path, &query).await;
                let got = outcome(&answer);
                refused += usize::from(answer["type"] == "ERROR");
                let want = match forgery_name {
                    "another tenant's id" => "CONVERSATION_NOT_FOUND",
                    "another tenant's cursor" => "INVALID_CURSOR",
                    _ => "INVALID_FIELD",
                };
                cells += 1;
                if got != want {
                    mismatches.push(format!(
                        "GET {path} / {forgery_name} by {}: expected {want}, got {status} {answer}",
                        roles[role]
                    ));
                }
                assert_eq!(stack.snapshot().await, baseline);
                assert!(!answer.to_string().contains("globex one"));
                row.push_str(&format!(" ✗ {status} {got} |"));
            }
            table.push_str(&row);
            table.push('\n');
        }
    }
    let summary = format!(
        "{cells} cells: {refused} refused with their code, {} a no-op ACK (marking another \
         tenant's notification read); in every one the table unchanged and nothing delivered",
        cells - refused
    );
    println!("{summary}\n\n{table}");
    let out = format!("{}/target/test-output", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        format!("{out}/forgery-matrix.md"),
        format!("{summary}\n\n{table}"),
    )
    .unwrap();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(cells >= 300, "only {cells} cells");
}

/// A GET on the HTTP API as `client`, through the http-api handler.
async fn http_get(
    stack: &TestStack,
    client: &Client,
    path: &str,
    query: &[(String, String)],
) -> (u16, Value) {
    use lambda_http::RequestExt;
    let token = messaging_devstack::tokens::mint_local(&client.principal, 600).unwrap();
    let mut parameters: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (name, value) in query {
        parameters
            .entry(name.clone())
            .or_default()
            .push(value.clone());
    }
    let request = lambda_http::http::Request::builder()
        .method("GET")
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(lambda_http::Body::Empty)
        .unwrap()
        .with_query_string_parameters(parameters);
    let response = messaging_handlers::http_api::handle(&stack.http, request).await;
    let status = response.status().as_u16();
    let body = match response.body() {
        lambda_http::Body::Text(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    (status, body)
}
