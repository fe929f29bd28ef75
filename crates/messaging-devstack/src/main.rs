//! `stackpro-dev`: developer commands for the local stack.
//!
//! ```text
//! stackpro-dev token --tenant 123 --user alice --role OWNER [--name "Alice"] [--ttl 3600]
//! stackpro-dev bootstrap --endpoint http://127.0.0.1:5000 [--prefix stackpro-local]
//! stackpro-dev invoke route events/route-chat-message.json
//! stackpro-dev limits --table NAME --tenant ID [--set JSON | --clear]
//! ```

mod invoke;

use std::collections::HashMap;
use std::process::ExitCode;

use messaging_core::{Principal, Role, TenantId, UserId};
use messaging_devstack::{tokens, LocalResources, Template};

const USAGE: &str = "usage:
  stackpro-dev token --tenant ID --user ID --role OWNER|ADMIN|USER [--name NAME] [--ttl SECONDS]
                    [--email ADDRESS] [--phone +E164]
      prints a development token for the local stack, with a verified email (by default
      {user}@{tenant}.stackpro.local) and phone, as an identity provider's token carries
  stackpro-dev bootstrap --endpoint URL [--prefix NAME]
      creates the table, queues and files bucket of template.yaml on the emulator at URL,
      verifies the local SES sender, and prints TABLE_NAME=…, BROADCAST_QUEUE_URL=…,
      BROADCAST_DLQ_URL=…, FILES_BUCKET=… and SENDER_EMAIL=… for the functions' environment
  stackpro-dev invoke connect|disconnect|route|file-share|http-api|service-api|image-preview|broadcast|notify-batch EVENT.json
      runs that function's handler once on the event, configured like the Lambda
      (TABLE_NAME, BROADCAST_QUEUE_URL, JWT_*, AWS_ENDPOINT_URL…), and prints its response
  stackpro-dev limits --table NAME --tenant ID [--set JSON | --clear]
      prints a tenant's own rate limits; --set replaces them (fields of the RATE_LIMITS JSON:
      framesPerSecond, frameBurst, userSendsPerMinute, tenantSendsPerMinute; unset ones take
      the defaults), --clear returns the tenant to the stack's defaults. Uses the usual AWS
      credentials and region (AWS_ENDPOINT_URL for the local stack); functions apply a change
      within a minute";

fn flags(args: &[String]) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    let mut iter = args.iter();
    while let Some(flag) = iter.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag:?}"))?;
        // A switch (`--clear`) is a flag without a value.
        if name == "clear" {
            map.insert(name.to_owned(), "true".to_owned());
            continue;
        }
        let value = iter
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        map.insert(name.to_owned(), value.clone());
    }
    Ok(map)
}

fn token(args: &HashMap<String, String>) -> Result<String, String> {
    let get = |name: &str| {
        args.get(name)
            .ok_or_else(|| format!("--{name} is required"))
    };
    let principal = Principal {
        tenant: TenantId::parse(get("tenant")?.as_str()).map_err(|e| e.to_string())?,
        user: UserId::parse(get("user")?.as_str()).map_err(|e| e.to_string())?,
        role: get("role")?.parse::<Role>().map_err(|e| e.to_string())?,
        name: args.get("name").cloned(),
    };
    let ttl = match args.get("ttl") {
        Some(ttl) => ttl
            .parse()
            .map_err(|_| format!("--ttl must be a number of seconds, not {ttl:?}"))?,
        None => 12 * 3600,
    };
    let contacts = messaging_core::token::Contacts {
        email: Some(
            args.get("email")
                .cloned()
                .unwrap_or_else(|| tokens::local_email(&principal)),
        ),
        phone: args.get("phone").cloned(),
    };
    tokens::mint_local_with(&principal, &contacts, ttl).map_err(|e| e.to_string())
}

async fn bootstrap(args: &HashMap<String, String>) -> anyhow::Result<()> {
    let endpoint = args
        .get("endpoint")
        .ok_or_else(|| anyhow::anyhow!("--endpoint is required"))?;
    let prefix = args
        .get("prefix")
        .map(String::as_str)
        .unwrap_or("stackpro-local");
    let template = Template::workspace()?;
    let sdk = messaging_devstack::sdk_config(endpoint);
    let resources =
        LocalResources::create(&sdk, &template, prefix, messaging_devstack::LOCAL_SENDER).await?;
    println!("TABLE_NAME={}", resources.table_name);
    println!(
        "BROADCAST_QUEUE_URL={}",
        resources.queue_url("BroadcastQueue")?
    );
    println!(
        "BROADCAST_DLQ_URL={}",
        resources.queue_url("BroadcastDeadLetterQueue")?
    );
    println!("NOTIFY_QUEUE_URL={}", resources.queue_url("NotifyQueue")?);
    println!("FILES_BUCKET={}", resources.bucket);
    println!("UPLOADS_QUEUE_URL={}", resources.queue_url("UploadsQueue")?);
    println!(
        "LIFECYCLE_QUEUE_URL={}",
        resources.queue_url("LifecycleQueue")?
    );
    println!("SENDER_EMAIL={}", resources.sender);
    // The functions read their secrets from Secrets Manager, as deployed.
    println!(
        "CURSOR_SECRET_ID={}",
        resources.secret_arn("SigningSecret")?
    );
    println!(
        "JWT_VERIFICATION_KEY_ID={}",
        resources.secret_arn("JwtKeySecret")?
    );
    Ok(())
}

/// Reads, sets or clears a tenant's own rate limits in a deployed (or local) table.
async fn limits(args: &HashMap<String, String>) -> anyhow::Result<()> {
    use messaging_core::limits::RateLimits;
    let get = |name: &str| {
        args.get(name)
            .ok_or_else(|| anyhow::anyhow!("--{name} is required"))
    };
    let tenant = TenantId::parse(get("tenant")?.as_str())?;
    let sdk = messaging_handlers::config::aws().await;
    let table = messaging_aws::MessagingTable::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        get("table")?.as_str(),
    );
    if let Some(json) = args.get("set") {
        let limits: RateLimits = serde_json::from_str(json)
            .map_err(|e| anyhow::anyhow!("--set is not rate limits JSON: {e}"))?;
        limits.validate().map_err(|e| anyhow::anyhow!(e))?;
        table.set_rate_limits(&tenant, Some(&limits)).await?;
    } else if args.contains_key("clear") {
        table.set_rate_limits(&tenant, None).await?;
    }
    match table.rate_limits(&tenant).await? {
        Some(own) => println!("{}", serde_json::to_string_pretty(&own)?),
        None => println!(
            "{} (the stack's defaults; RATE_LIMITS may change them)",
            serde_json::to_string_pretty(&RateLimits::default())?
        ),
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if command == "invoke" {
        return match (rest.first(), rest.get(1), rest.len()) {
            (Some(function), Some(event), 2) => match invoke::run(function, event).await {
                Ok(response) => {
                    println!("{response}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("stackpro-dev invoke: {e:#}");
                    ExitCode::FAILURE
                }
            },
            _ => {
                eprintln!("{USAGE}");
                ExitCode::from(2)
            }
        };
    }
    let parsed = match flags(rest) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("{e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match command.as_str() {
        "token" => token(&parsed)
            .map(|t| println!("{t}"))
            .map_err(|e| anyhow::anyhow!(e)),
        "bootstrap" => bootstrap(&parsed).await,
        "limits" => limits(&parsed).await,
        _ => Err(anyhow::anyhow!("unknown command {command:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stackpro-dev: {e:#}");
            ExitCode::FAILURE
        }
    }
}
