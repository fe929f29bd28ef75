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
