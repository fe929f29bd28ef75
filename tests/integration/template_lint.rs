//! template.yaml passes both linters, and its wiring matches the workspace.

use std::process::Command;

use messaging_devstack::Template;

fn venv_tool(name: &str) -> String {
    let venv = std::env::var("STACKPRO_VENV")
        .unwrap_or_else(|_| format!("{}/.venv", env!("CARGO_MANIFEST_DIR")));
    format!("{venv}/bin/{name}")
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("SAM_CLI_TELEMETRY", "0")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); run ./infra/local/test.sh, which installs it")
        });
    assert!(
        output.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn template_passes_cfn_lint() {
    run(&venv_tool("cfn-lint"), &["template.yaml"]);
}

#[test]
fn template_passes_sam_validate_lint() {
    run(
        &venv_tool("sam"),
        &[
            "validate",
            "--lint",
            "--region",
            "us-east-1",
            "--template-file",
            "template.yaml",
        ],
    );
}

#[test]
fn every_function_builds_a_workspace_binary_from_the_workspace_root() {
    let template = Template::workspace().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    for (logical_id, binary) in [
        ("ConnectFunction", "connect"),
        ("DisconnectFunction", "disconnect"),
        ("RouteFunction", "route"),
        ("BroadcastFunction", "broadcast"),
    ] {
        let metadata = template
            .get(&["Resources", logical_id, "Metadata"])
            .unwrap();
        assert_eq!(
            metadata["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{logical_id}"
        );
        assert_eq!(
            metadata["BuildProperties"]["Binary"].as_str(),
            Some(binary),
            "{logical_id}"
        );
        let manifest =
            std::fs::read_to_string(format!("{root}/functions/{binary}/Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "functions/{binary} builds another binary"
        );
    }
    // CodeUri `.` (the workspace root) for all: shared crates compile once (aws-sam-cli 6877).
    assert_eq!(
        template
            .get(&["Globals", "Function", "CodeUri"])
            .and_then(|v| v.as_str()),
        Some(".")
    );
}

#[test]
fn routes_are_the_three_the_functions_expect() {
    let template = Template::workspace().unwrap();
    let api = template
        .get(&["Resources", "WebSocketApi", "Properties"])
        .unwrap();
    assert_eq!(api["ProtocolType"].as_str(), Some("WEBSOCKET"));
    assert_eq!(
        api["RouteSelectionExpression"].as_str(),
        Some("$request.body.type")
    );
    let mut keys: Vec<String> = ["ConnectRoute", "DisconnectRoute", "DefaultRoute"]
        .iter()
        .map(|r| {
            template
                .get(&["Resources", r, "Properties", "RouteKey"])
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    keys.sort();
    assert_eq!(keys, ["$connect", "$default", "$disconnect"]);
    let response = template.get(&[
        "Resources",
        "DefaultRoute",
        "Properties",
        "RouteResponseSelectionExpression",
    ]);
    assert_eq!(
        response.and_then(|v| v.as_str()),
        Some("$default"),
        "ACK/ERROR frames need a two-way route"
    );
}

#[test]
fn jwt_parameters_have_no_secret_defaults() {
    let template = Template::workspace().unwrap();
    for secret in ["JwtVerificationKey", "CursorSecret"] {
        let key = template.get(&["Parameters", secret]).unwrap();
        assert_eq!(key["NoEcho"].as_bool(), Some(true), "{secret}");
        assert!(key.get("Default").is_none(), "{secret} has a default");
    }
    for name in ["JwtIssuer", "JwtAudience"] {
        assert!(
            template.get(&["Parameters", name, "Default"]).is_none(),
            "{name} has a default"
        );
    }
}
