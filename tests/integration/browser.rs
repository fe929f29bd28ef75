//! The browser test of the demo web client (tests/browser/chat.test.mjs) against the real
//! gateway and functions. Needs Node, `npm ci` in tests/browser and Debian's chromium, which
//! ./infra/local/test.sh installs.

use std::path::Path;

use test_support::gateway::GatewayStack;

#[tokio::test]
async fn two_users_chat_in_the_demo_client_and_another_tenant_sees_nothing() {
    let root = env!("CARGO_MANIFEST_DIR");
    let browser_dir = format!("{root}/tests/browser");
    assert!(
        Path::new(&format!("{browser_dir}/node_modules/playwright-core")).exists(),
        "playwright-core is not installed: run ./infra/local/test.sh (it runs npm ci in tests/browser)"
    );
    let output = format!("{root}/target/test-output/browser");
    let _ = std::fs::remove_dir_all(&output);
    let gw = GatewayStack::start().await;
    let page = gw.gateway.page_url();
    let out = output.clone();
    // node runs off the runtime: the gateway it talks to runs on this one.
    let result = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .args(["--test", "--test-reporter=spec", "chat.test.mjs"])
            .current_dir(&browser_dir)
            .env("STACKPRO_GATEWAY_URL", page)
            .env("STACKPRO_TEST_OUTPUT", out)
            .output()
    })
    .await
    .unwrap()
    .expect("node runs");
    gw.stop().await;
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    for shot in ["chat-bob.png", "chat-alice.png", "chat-other-tenant.png"] {
        let size = std::fs::metadata(format!("{output}/{shot}"))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size > 1000, "{shot} was not saved");
    }
}
