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

/// checkov (the infrastructure-as-code scanner) finds nothing: every check either passes or is
/// skipped in the resource's own `Metadata.checkov.skip` with the reason it does not apply.
#[test]
fn template_passes_checkov() {
    let venv = std::env::var("STACKPRO_VENV")
        .map(|v| format!("{v}-checkov"))
        .unwrap_or_else(|_| format!("{}/.venv-checkov", env!("CARGO_MANIFEST_DIR")));
    let program = format!("{venv}/bin/checkov");
    let output = Command::new(&program)
        .args([
            "-f",
            "template.yaml",
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--compact",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("BC_SKIP_MAPPING", "TRUE")
        .env("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}); run ./infra/local/test.sh, which installs it")
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON report ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let summary = &report["summary"];
    let results = &report["results"];
    println!(
        "checkov: passed {}, failed {}, skipped {}",
        summary["passed"], summary["failed"], summary["skipped"]
    );
    let failed: Vec<String> = results["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {} on {}", c["check_id"], c["check_name"], c["resource"]))
        .collect();
    assert!(
        failed.is_empty(),
        "checkov failed checks:\n{}",
        failed.join("\n")
    );
    assert!(
        summary["passed"].as_u64().unwrap_or(0) > 50,
        "checkov ran too few checks to mean anything: {summary}"
    );
    for skipped in results["skipped_checks"].as_array().into_iter().flatten() {
        let reason = skipped["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or_default();
        assert!(
            reason.trim().len() > 20,
            "{} on {} is skipped without a reason",
            skipped["check_id"],
            skipped["resource"]
        );
    }
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
    let key = template.get(&["Parameters", "JwtVerificationKey"]).unwrap();
    assert_eq!(key["NoEcho"].as_bool(), Some(true));
    assert!(
        key.get("Default").is_none(),
        "JwtVerificationKey has a default"
    );
    for name in ["JwtIssuer", "JwtAudience"] {
        assert!(
            template.get(&["Parameters", name, "Default"]).is_none(),
            "{name} has a default"
        );
    }
}

#[test]
fn no_function_environment_holds_a_secret() {
    // Anyone allowed lambda:GetFunctionConfiguration reads a function's environment: secrets
    // live in Secrets Manager, the environment names them (`*_ID`), and each function's policy
    // lets it read exactly the ones it names, through the key that encrypts them.
    let template = Template::workspace().unwrap();
    let secrets: Vec<String> = template
        .of_type("AWS::SecretsManager::Secret")
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let policies = template.function_policies().unwrap();
    let mut named = 0;
    for (binary, env) in template.function_environment().unwrap() {
        for (name, value) in env {
            let target = messaging_devstack::template::reference(Some(&value));
            if let Some(parameter) = target.as_deref().and_then(|t| template.parameter(t)) {
                assert!(
                    parameter.get("NoEcho").is_none(),
                    "{binary}: {name} is the NoEcho parameter {target:?} in plain sight"
                );
            }
            let Some(secret) = target.filter(|t| secrets.contains(t)) else {
                assert!(
                    !name.ends_with("_ID") || name == "AWS_ENDPOINT_URL",
                    "{binary}: {name}"
                );
                continue;
            };
            assert!(
                name.ends_with("_ID"),
                "{binary}: {name} should name the secret by id"
            );
            named += 1;
            let statements = &policies[&binary];
            let reads = statements.iter().any(|s| {
                s.actions
                    .iter()
                    .any(|a| a == "secretsmanager:GetSecretValue")
                    && s.resources
                        .contains(&messaging_devstack::PolicyResource::Ref(secret.clone()))
            });
            assert!(reads, "{binary} cannot read {secret}");
            let key = messaging_devstack::template::reference(template.get(&[
                "Resources",
                &secret,
                "Properties",
                "KmsKeyId",
            ]))
            .unwrap_or_else(|| panic!("{secret} is not encrypted with the stack's key"));
            let decrypts = statements.iter().any(|s| {
                s.actions.iter().any(|a| a == "kms:Decrypt")
                    && s.resources
                        .contains(&messaging_devstack::PolicyResource::Ref(key.clone()))
                    && s.has_condition
            });
            assert!(
                decrypts,
                "{binary} cannot decrypt {secret} (kms:Decrypt via Secrets Manager on {key})"
            );
        }
    }
    // connect and http-api: the token key; route, file-share, http-api, notify-batch: the
    // signing secret.
    assert_eq!(secrets.len(), 2, "{secrets:?}");
    assert_eq!(named, 6);
}

/// A `KeyPolicy` statement's service principals, actions and condition (if any).
fn key_statements(template: &Template, key_id: &str) -> Vec<serde_yaml::Value> {
    template
        .get(&["Resources", key_id, "Properties", "KeyPolicy", "Statement"])
        .and_then(|s| s.as_sequence())
        .cloned()
        .unwrap_or_default()
}

/// Whether a statement of `key_id`'s policy allows `service` every one of `actions`
/// (`kms:GenerateDataKey*` style wildcards honoured). Returns the statement's condition.
fn key_allows(
    template: &Template,
    key_id: &str,
    service: &str,
    actions: &[&str],
) -> Option<Option<serde_yaml::Value>> {
    key_statements(template, key_id).into_iter().find_map(|st| {
        let principal = st.get("Principal")?.get("Service")?;
        let names = match principal {
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Tagged(t) => t.value.as_str()?.to_owned(),
            _ => return None,
        };
        if st.get("Effect")?.as_str()? != "Allow" || names != service {
            return None;
        }
        let allowed: Vec<String> = match st.get("Action")? {
            serde_yaml::Value::String(s) => vec![s.clone()],
            serde_yaml::Value::Sequence(v) => v
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            _ => return None,
        };
        let covers = |action: &str| {
            allowed.iter().any(|a| match a.strip_suffix('*') {
                Some(prefix) => action.starts_with(prefix),
                None => a == action,
            })
        };
        actions
            .iter()
            .all(|a| covers(a))
            .then(|| st.get("Condition").cloned())
    })
}

/// The logical id of the stack's KMS key a property refers to, if it is one.
fn stack_key(template: &Template, value: Option<&serde_yaml::Value>) -> Option<String> {
    let id = messaging_devstack::template::reference(value)?;
    let keys = template.of_type("AWS::KMS::Key").unwrap();
    keys.iter().any(|(k, _)| *k == id).then_some(id)
}

#[test]
fn alarms_can_publish_to_their_encrypted_topic() {
    // CloudWatch publishes to an encrypted topic only when the topic's key lets it use the key:
    // the AWS-managed alias/aws/sns cannot (its policy is fixed), moto does not check.
    let template = Template::workspace().unwrap();
    let alarms = template.of_type("AWS::CloudWatch::Alarm").unwrap();
    assert!(!alarms.is_empty());
    for (alarm, props) in alarms {
        let actions = props["AlarmActions"].as_sequence().unwrap();
        assert!(!actions.is_empty(), "{alarm} alerts nobody");
        for action in actions {
            let topic =
                messaging_devstack::template::reference(Some(action)).unwrap_or_else(|| {
                    panic!("{alarm}: action {action:?} is not a topic of the stack")
                });
            let key_ref = template.get(&["Resources", &topic, "Properties", "KmsMasterKeyId"]);
            let key = stack_key(&template, key_ref).unwrap_or_else(|| {
                panic!("{alarm} publishes to {topic}, encrypted with {key_ref:?}: not a key of this stack, CloudWatch cannot use it")
            });
            assert!(
                key_allows(
                    &template,
                    &key,
                    "cloudwatch.amazonaws.com",
                    &["kms:Decrypt", "kms:GenerateDataKey"]
                )
                .is_some(),
                "{key}'s policy does not let CloudWatch publish to {topic}"
            );
        }
    }
}

#[test]
fn every_function_and_api_logs_to_an_expiring_encrypted_group_of_this_stack() {
    let template = Template::workspace().unwrap();
    let groups = template.of_type("AWS::Logs::LogGroup").unwrap();
    let group = |id: &str| {
        groups
            .iter()
            .find(|(g, _)| g == id)
            .map(|(_, props)| *props)
            .unwrap_or_else(|| panic!("{id} is not a log group of this stack"))
    };
    let mut targets = Vec::new();
    for (function, props) in template.of_type("AWS::Serverless::Function").unwrap() {
        let id = messaging_devstack::template::reference(
            props.get("LoggingConfig").and_then(|l| l.get("LogGroup")),
        )
        .unwrap_or_else(|| panic!("{function} logs to the default group, kept forever"));
        targets.push((function, id));
    }
    for (api, path) in [
        (
            "WebSocketStage",
            [
                "Resources",
                "WebSocketStage",
                "Properties",
                "AccessLogSettings",
                "DestinationArn",
            ],
        ),
        (
            "PortalHttpApi",
            [
                "Resources",
                "PortalHttpApi",
                "Properties",
                "AccessLogSettings",
                "DestinationArn",
            ],
        ),
    ] {
        let id = messaging_devstack::template::reference(template.get(&path))
            .unwrap_or_else(|| panic!("{api} has no access log"));
        targets.push((api.to_owned(), id));
    }
    assert_eq!(targets.len(), 10);
    for (owner, id) in targets {
        let props = group(&id);
        assert!(
            props.get("RetentionInDays").is_some(),
            "{owner}: {id} never expires"
        );
        let name = props["LogGroupName"]
            .as_str()
            .or_else(|| match &props["LogGroupName"] {
                serde_yaml::Value::Tagged(t) => t.value.as_str(),
                _ => None,
            });
        let name = name.unwrap_or_else(|| panic!("{id} has no name"));
        assert!(
            name.starts_with("/stackpro/${AWS::StackName}/"),
            "{id}: {name}"
        );
        let key = stack_key(&template, props.get("KmsKeyId"))
            .unwrap_or_else(|| panic!("{owner}: {id} is not encrypted with a key of this stack"));
        let condition = key_allows(
            &template,
            &key,
            "logs.${AWS::Region}.amazonaws.com",
            &[
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:GenerateDataKey",
                "kms:DescribeKey",
            ],
        )
        .unwrap_or_else(|| panic!("{key} does not let CloudWatch Logs encrypt {id}"))
        .expect("the logs statement is limited to this stack's groups");
        let context = format!("{condition:?}");
        assert!(
            context.contains("log-group:/stackpro/${AWS::StackName}/*"),
            "{key}: {context}"
        );
    }
    // The runtime and SDK print raw events and bodies at trace: not offered.
    let levels = template
        .get(&["Parameters", "LogLevel", "AllowedValues"])
        .unwrap();
    assert!(!format!("{levels:?}").contains("trace"), "{levels:?}");
}

#[test]
fn access_logs_never_record_a_query_string_or_a_body() {
    let template = Template::workspace().unwrap();
    for path in [
        [
            "Resources",
            "WebSocketStage",
            "Properties",
            "AccessLogSettings",
            "Format",
        ],
        [
            "Resources",
            "PortalHttpApi",
            "Properties",
            "AccessLogSettings",
            "Format",
        ],
    ] {
        let format = template.get(&path).and_then(|f| f.as_str()).unwrap();
        let line: serde_json::Value = serde_json::from_str(format).expect("a JSON line");
        for forbidden in [
            "requestQueryString",
            "queryString",
            "$input",
            "body",
            "authorizer",
            "$context.path",
        ] {
            assert!(!format.contains(forbidden), "{path:?} logs {forbidden}");
        }
        assert!(line.get("requestId").is_some() && line.get("status").is_some());
    }
    let stage = template
        .get(&[
            "Resources",
            "WebSocketStage",
            "Properties",
            "DefaultRouteSettings",
        ])
        .unwrap();
    assert_eq!(stage["DataTraceEnabled"].as_bool(), Some(false));
}

/// An operator can cap every function's concurrency (what a flood can cost, and the account's
/// other functions kept from starving), and a failing notification batch pages someone.
#[test]
fn every_function_can_be_capped_and_a_failing_notification_batch_is_alarmed() {
    let template = Template::workspace().unwrap();
    let reserved = template
        .get(&["Globals", "Function", "ReservedConcurrentExecutions"])
        .expect("Globals.Function.ReservedConcurrentExecutions");
    let text = serde_yaml::to_string(reserved).unwrap();
    assert!(
        text.contains("ReservedConcurrency") && text.contains("AWS::NoValue"),
        "reserved concurrency is not the ReservedConcurrency parameter (0 = none): {text}"
    );
    assert!(template.has_parameter("ReservedConcurrency"));
    let functions = template.of_type("AWS::Serverless::Function").unwrap();
    assert_eq!(functions.len(), 8);
    for (id, properties) in functions {
        assert!(
            properties.get("ReservedConcurrentExecutions").is_none(),
            "{id} overrides the reserved concurrency cap"
        );
    }
    let alarms = template.of_type("AWS::CloudWatch::Alarm").unwrap();
    let batch_alarm = alarms.iter().find(|(_, props)| {
        props["Namespace"] == "AWS/Lambda"
            && props["MetricName"] == "Errors"
            && props["Dimensions"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|d| {
                    messaging_devstack::template::reference(Some(&d["Value"])).as_deref()
                        == Some("NotifyBatchFunction")
                })
    });
    let (id, alarm) = batch_alarm.expect("an alarm on the notification batch's Errors");
    let actions = serde_yaml::to_string(&alarm["AlarmActions"]).unwrap();
    assert!(
        actions.contains("AlarmTopic"),
        "{id} notifies nobody: {actions}"
    );
}
