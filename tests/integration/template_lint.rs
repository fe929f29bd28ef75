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

/// Every function of the template, as (logical id, the binary its BuildProperties name).
fn template_functions(template: &Template) -> Vec<(String, String)> {
    let functions = template.of_type("AWS::Serverless::Function").unwrap();
    assert!(functions.len() >= 8, "{} functions", functions.len());
    functions
        .into_iter()
        .map(|(logical_id, properties)| {
            let metadata = template
                .get(&["Resources", &logical_id, "Metadata"])
                .unwrap_or_else(|| panic!("{logical_id} has no build metadata"));
            assert_eq!(
                metadata["BuildMethod"].as_str(),
                Some("makefile"),
                "{logical_id} is not built by the Makefile"
            );
            let binary = metadata["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{logical_id} names no binary"))
                .to_owned();
            assert!(
                properties.get("CodeUri").is_none(),
                "{logical_id} has a CodeUri of its own: the Makefile is at the workspace root"
            );
            (logical_id, binary)
        })
        .collect()
}

/// The commands `make` would run for `target` (dry run), as sam build runs it: from the
/// workspace root, with ARTIFACTS_DIR set and none of the caller's overrides.
fn make_commands(target: &str, artifacts_dir: &str) -> Vec<String> {
    let output = Command::new("make")
        .args(["-n", "--no-print-directory", target])
        .arg(format!("ARTIFACTS_DIR={artifacts_dir}"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("LAMBDA_PROFILE")
        .env_remove("MAKEFLAGS")
        .env_remove("MAKELEVEL")
        .output()
        .unwrap_or_else(|e| panic!("cannot run make ({e}); ./infra/local/test.sh installs it"));
    assert!(
        output.status.success(),
        "make -n {target} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A recipe is one shell command line of `;`-separated commands (the Makefile's lock).
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .flat_map(|line| line.split("; "))
        .map(|command| command.trim().to_owned())
        .collect()
}

/// The packages a `cargo lambda build` command line builds, or None for another command.
fn cargo_lambda_packages(command: &str) -> Option<Vec<String>> {
    let rest = command.strip_prefix("cargo lambda build ")?;
    let words: Vec<&str> = rest.split_whitespace().collect();
    assert!(words.contains(&"--arm64"), "not arm64: {command}");
    assert!(words.contains(&"--locked"), "not --locked: {command}");
    assert!(
        words.windows(2).any(|w| w == ["--profile", "release"]),
        "not the release profile by default: {command}"
    );
    Some(
        words
            .windows(2)
            .filter(|w| w[0] == "--package")
            .map(|w| w[1].to_owned())
            .collect(),
    )
}

/// What `sam build` runs (the Makefile) and what the template deploys agree: every function's
/// target runs the one cargo-lambda build (arm64, release) of exactly the binaries the template
/// deploys, and packages the binary its template entry names as `bootstrap`; no two functions
/// package the same binary. The first target builds, the others find the same build fresh:
/// each binary is built once per `sam build`. The release profile leaves cargo-lambda nothing
/// to choose. Dry runs: no compiler is started.
#[test]
fn sam_build_makes_every_function_binary_once_and_packages_the_one_the_template_names() {
    let template = Template::workspace().unwrap();
    assert_eq!(
        template
            .get(&["Globals", "Function", "CodeUri"])
            .and_then(|v| v.as_str()),
        Some("."),
        "every function builds from the workspace root, where the Makefile is"
    );
    let root = env!("CARGO_MANIFEST_DIR");
    let functions = template_functions(&template);
    let mut packaged = std::collections::BTreeMap::new();
    let mut per_target_builds = Vec::new();
    for (logical_id, binary) in &functions {
        let manifest = std::fs::read_to_string(format!("{root}/functions/{binary}/Cargo.toml"))
            .unwrap_or_else(|e| panic!("{logical_id}: functions/{binary}/Cargo.toml: {e}"));
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "functions/{binary} builds another binary"
        );
        let artifacts = format!("/sam/artifacts/{logical_id}");
        let commands = make_commands(&format!("build-{logical_id}"), &artifacts);
        let builds: Vec<Vec<String>> = commands
            .iter()
            .filter_map(|c| cargo_lambda_packages(c))
            .collect();
        assert_eq!(
            builds.len(),
            1,
            "build-{logical_id} must run one cargo-lambda build:\n{}",
            commands.join("\n")
        );
        per_target_builds.push(builds[0].clone());
        let copy = format!("cp \"target/lambda/{binary}/bootstrap\" \"{artifacts}/bootstrap\"");
        assert!(
            commands.contains(&copy),
            "build-{logical_id} does not package {binary} as bootstrap:\n{}",
            commands.join("\n")
        );
        if let Some(other) = packaged.insert(binary.clone(), logical_id.clone()) {
            panic!("{logical_id} and {other} both deploy {binary}");
        }
    }
    // One build, the same for every target and for `make lambdas`: after the first target
    // has run it, cargo finds the other targets' builds fresh. It makes exactly the binaries
    // the template deploys, each named once.
    let all = make_commands("lambdas", "/unused");
    let builds: Vec<Vec<String>> = all
        .iter()
        .filter_map(|c| cargo_lambda_packages(c))
        .collect();
    assert_eq!(builds.len(), 1, "make lambdas: {all:?}");
    for (build, (logical_id, _)) in per_target_builds.iter().zip(&functions) {
        assert_eq!(
            build, &builds[0],
            "build-{logical_id} builds something else"
        );
    }
    let mut built = builds[0].clone();
    built.sort();
    let mut unique = built.clone();
    unique.dedup();
    assert_eq!(built, unique, "a package named twice: {built:?}");
    assert_eq!(
        built,
        packaged.keys().cloned().collect::<Vec<_>>(),
        "the build makes other binaries than the template deploys"
    );

    // cargo-lambda gives a release build strip, lto, codegen-units and panic ("abort") of its
    // own choosing for each one [profile.release] leaves unset.
    let cargo_toml = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap();
    let release: Vec<&str> = cargo_toml
        .lines()
        .skip_while(|l| l.trim() != "[profile.release]")
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    for key in ["strip", "lto", "codegen-units", "panic"] {
        assert!(
            release
                .iter()
                .any(|l| l.split('=').next().map(str::trim) == Some(key)),
            "[profile.release] leaves {key} to cargo-lambda: {release:?}"
        );
    }
    assert!(
        release
            .iter()
            .any(|l| l.replace(' ', "") == "panic=\"abort\""),
        "the 8 MB budget holds without LTO only under abort (Cargo.toml, docs/deploying.md)"
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
    assert_eq!(targets.len(), 13);
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
    assert_eq!(functions.len(), 11);
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

/// `sam build --parallel` runs the Makefile's eleven targets at once: their builds take turns on
/// the Makefile's lock (cargo-lambda moves binaries after cargo's own lock is released, so two
/// at once could copy a half-written file), every function gets its own binary, and the lock
/// file a killed build left behind is not waited on. `cargo` here is a
/// stand-in that records when each build starts and ends and writes a binary naming itself.
#[test]
fn parallel_sam_builds_take_turns_and_each_packages_its_own_binary() {
    use std::os::unix::fs::PermissionsExt;
    let template = Template::workspace().unwrap();
    let functions = template_functions(&template);
    let dir = std::env::temp_dir().join(format!("stackpro-make-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bin = dir.join("bin");
    let target = dir.join("target");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("builds.log");
    let fake = bin.join("cargo");
    std::fs::write(
        &fake,
        r#"#!/bin/sh
# cargo lambda build ... --package A --package B ...
echo "start $$" >> "$FAKE_LOG"
sleep 0.3
next=
for word in "$@"; do
  if [ "$next" = package ]; then
    mkdir -p "$CARGO_TARGET_DIR/lambda/$word"
    echo "$word" > "$CARGO_TARGET_DIR/lambda/$word/bootstrap.tmp"
    mv "$CARGO_TARGET_DIR/lambda/$word/bootstrap.tmp" "$CARGO_TARGET_DIR/lambda/$word/bootstrap"
  fi
  next=
  [ "$word" = --package ] && next=package
done
echo "end $$" >> "$FAKE_LOG"
"#,
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();

    // The lock file a killed build left behind: flock(2) locks die with their holder, so it
    // must not be waited on.
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join(".lambda-build.lock"), "").unwrap();

    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let children: Vec<(String, String, std::process::Child)> = functions
        .iter()
        .map(|(logical_id, binary)| {
            let artifacts = dir.join("artifacts").join(logical_id);
            let child = Command::new("make")
                .args(["--no-print-directory", &format!("build-{logical_id}")])
                .arg(format!("ARTIFACTS_DIR={}", artifacts.display()))
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("PATH", &path)
                .env("CARGO_TARGET_DIR", &target)
                .env("FAKE_LOG", &log)
                .env_remove("LAMBDA_PROFILE")
                .env_remove("MAKEFLAGS")
                .env_remove("MAKELEVEL")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (logical_id.clone(), binary.clone(), child)
        })
        .collect();
    for (logical_id, binary, child) in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "make build-{logical_id} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let packaged = dir.join("artifacts").join(&logical_id).join("bootstrap");
        assert_eq!(
            std::fs::read_to_string(&packaged).unwrap().trim(),
            binary,
            "{logical_id} packaged another binary"
        );
    }
    let events = std::fs::read_to_string(&log).unwrap();
    let events: Vec<&str> = events.lines().collect();
    assert_eq!(events.len(), 2 * functions.len(), "{events:?}");
    for pair in events.chunks(2) {
        let (start, end) = (pair[0], pair[1]);
        assert!(
            start.starts_with("start ") && end == start.replacen("start", "end", 1),
            "two builds ran at once: {events:?}"
        );
    }
    let free = Command::new("flock")
        .arg("--nonblock")
        .arg(target.join(".lambda-build.lock"))
        .arg("true")
        .status()
        .unwrap();
    assert!(free.success(), "the lock outlived the builds");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_server_api_routes_and_only_they_take_aws_iam() {
    // A server API route without AWS_IAM would be open to anyone (the function also refuses a
    // request without the IAM caller, but the route is the gate); a user route with it would
    // refuse every portal page.
    let template = Template::workspace().unwrap();
    let routes = template.http_routes().unwrap();
    let service: Vec<_> = routes
        .iter()
        .filter(|r| r.function == "service-api")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        service,
        [
            "POST /service/tenants/{clientId}/conversations",
            "POST /service/tenants/{clientId}/conversations/{conversationId}/members",
            "DELETE /service/tenants/{clientId}/conversations/{conversationId}/members/{userId}",
            "POST /service/tenants/{clientId}/conversations/{conversationId}/messages",
            "POST /service/tenants/{clientId}/erasures",
            "POST /service/tenants/{clientId}/exports",
            "GET /service/tenants/{clientId}/jobs/{jobId}",
            "POST /service/tenants/{clientId}/offboarding",
            "PUT /service/tenants/{clientId}/retention",
            "PUT /service/tenants/{clientId}/users/{userId}",
        ]
    );
    for route in &routes {
        let server_api = route.path.starts_with("/service/");
        assert_eq!(route.iam, server_api, "{} {}", route.method, route.path);
        assert_eq!(
            route.function == "service-api",
            server_api,
            "{}",
            route.path
        );
    }
    assert_eq!(
        template
            .get(&[
                "Resources",
                "PortalHttpApi",
                "Properties",
                "Auth",
                "EnableIamAuthorizer"
            ])
            .and_then(|v| v.as_bool()),
        Some(true)
    );
}
