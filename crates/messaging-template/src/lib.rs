//! Reads `template.yaml`: the table, queues, buckets, functions' policies and environments,
//! WebSocket and HTTP routes, schedules and event sources the stack defines, for the local
//! stack (`messaging-devstack` creates them on an emulator), the local gateway and the tests
//! that hold the template to its rules. Pure (no AWS SDK), so it is fuzzed on its own
//! (`fuzz/fuzz_targets/template.rs`): any text gives a template or a [`TemplateError`].

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::Value;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("template has no {0}")]
    Missing(String),
    #[error("template has an unexpected value at {0}")]
    Unexpected(String),
}

/// `AWS::DynamoDB::Table` properties that shape the table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableDefinition {
    pub logical_id: String,
    pub attributes: Vec<(String, String)>,
    pub key_schema: Vec<(String, String)>,
    pub indexes: Vec<IndexDefinition>,
    pub ttl_attribute: Option<String>,
    /// `StreamSpecification.StreamViewType`, when the table has a stream.
    pub stream_view_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IndexDefinition {
    pub name: String,
    pub key_schema: Vec<(String, String)>,
    pub projection: String,
}

/// `AWS::SQS::Queue` properties that change behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueDefinition {
    pub logical_id: String,
    pub attributes: BTreeMap<String, String>,
    /// Logical id of the dead-letter queue and `maxReceiveCount`.
    pub redrive: Option<(String, u32)>,
}

/// One statement of a function's policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyStatement {
    pub effect: String,
    pub actions: Vec<String>,
    /// Each `Resource`: `"*"`, a literal ARN, or the logical id it references (`!Ref`,
    /// `!GetAtt`, `!Sub`) as `Ref(logical id)`.
    pub resources: Vec<PolicyResource>,
    pub has_condition: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyResource {
    Any,
    Literal(String),
    /// `!Ref` or `!GetAtt` of this logical id.
    Ref(String),
    /// A `!Sub`: the names it substitutes (resources, parameters, pseudo parameters; the
    /// variables of its own map as `var:Name`), attributes stripped (`X.Arn` is `X`).
    Sub(Vec<String>),
}

impl QueueDefinition {
    pub fn is_fifo(&self) -> bool {
        self.attributes.get("FifoQueue").map(String::as_str) == Some("true")
    }
}

/// The parts of `template.yaml` the local stack needs.
#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
}

impl Template {
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TemplateError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        Ok(Self {
            root: serde_yaml::from_str(text)?,
        })
    }

    /// `template.yaml` at the workspace root.
    pub fn workspace() -> Result<Self, TemplateError> {
        Self::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml"))
    }

    fn resources(&self) -> Result<&serde_yaml::Mapping, TemplateError> {
        self.root
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or_else(|| TemplateError::Missing("Resources".into()))
    }

    /// (logical id, properties) of every resource of `kind`; a resource without a
    /// `Properties` block (valid CloudFormation) has empty properties.
    pub fn of_type(&self, kind: &str) -> Result<Vec<(String, &Value)>, TemplateError> {
        static EMPTY: Value = Value::Null;
        Ok(self
            .resources()?
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
            .filter_map(|(id, r)| {
                Some((
                    id.as_str()?.to_owned(),
                    r.get("Properties").unwrap_or(&EMPTY),
                ))
            })
            .collect())
    }

    /// The one DynamoDB table.
    pub fn table(&self) -> Result<TableDefinition, TemplateError> {
        let tables = self.of_type("AWS::DynamoDB::Table")?;
        let [(logical_id, props)] = tables.as_slice() else {
            return Err(TemplateError::Unexpected(format!(
                "{} DynamoDB tables (expected one)",
                tables.len()
            )));
        };
        let pairs = |value: Option<&Value>,
                     a: &str,
                     b: &str,
                     at: &str|
         -> Result<Vec<(String, String)>, TemplateError> {
            value
                .and_then(Value::as_sequence)
                .ok_or_else(|| TemplateError::Missing(at.into()))?
                .iter()
                .map(|e| {
                    Ok((
                        e.get(a)
                            .and_then(Value::as_str)
                            .ok_or_else(|| TemplateError::Unexpected(at.into()))?
                            .to_owned(),
                        e.get(b)
                            .and_then(Value::as_str)
                            .ok_or_else(|| TemplateError::Unexpected(at.into()))?
                            .to_owned(),
                    ))
                })
                .collect()
        };
        let indexes = match props
            .get("GlobalSecondaryIndexes")
            .and_then(Value::as_sequence)
        {
            None => Vec::new(),
            Some(list) => list
                .iter()
                .map(|gsi| {
                    Ok(IndexDefinition {
                        name: gsi
                            .get("IndexName")
                            .and_then(Value::as_str)
                            .ok_or_else(|| TemplateError::Missing("IndexName".into()))?
                            .to_owned(),
                        key_schema: pairs(
                            gsi.get("KeySchema"),
                            "AttributeName",
                            "KeyType",
                            "GSI KeySchema",
                        )?,
                        projection: gsi
                            .get("Projection")
                            .and_then(|p| p.get("ProjectionType"))
                            .and_then(Value::as_str)
                            .unwrap_or("ALL")
                            .to_owned(),
                    })
                })
                .collect::<Result<_, TemplateError>>()?,
        };
        let ttl = props.get("TimeToLiveSpecification");
        Ok(TableDefinition {
            logical_id: logical_id.clone(),
            attributes: pairs(
                props.get("AttributeDefinitions"),
                "AttributeName",
                "AttributeType",
                "AttributeDefinitions",
            )?,
            key_schema: pairs(
                props.get("KeySchema"),
                "AttributeName",
                "KeyType",
                "KeySchema",
            )?,
            indexes,
            ttl_attribute: ttl
                .filter(|t| t.get("Enabled").and_then(Value::as_bool) == Some(true))
                .and_then(|t| t.get("AttributeName"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            stream_view_type: props
                .get("StreamSpecification")
                .and_then(|s| s.get("StreamViewType"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// Every SQS queue, dead-letter queues first.
    pub fn queues(&self) -> Result<Vec<QueueDefinition>, TemplateError> {
        let mut queues = Vec::new();
        for (logical_id, props) in self.of_type("AWS::SQS::Queue")? {
            let mut attributes = BTreeMap::new();
            for name in [
                "VisibilityTimeout",
                "MessageRetentionPeriod",
                "DelaySeconds",
                "ReceiveMessageWaitTimeSeconds",
                "FifoQueue",
                "ContentBasedDeduplication",
                "DeduplicationScope",
                "FifoThroughputLimit",
            ] {
                if let Some(value) = props.get(name).and_then(scalar) {
                    attributes.insert(name.to_owned(), value);
                }
            }
            let redrive = match props.get("RedrivePolicy") {
                None => None,
                Some(policy) => {
                    let target = policy
                        .get("deadLetterTargetArn")
                        .and_then(|v| match v {
                            Value::Tagged(tagged) => tagged.value.as_str(),
                            _ => None,
                        })
                        .and_then(|s| s.split('.').next())
                        .ok_or_else(|| {
                            TemplateError::Unexpected(format!("{logical_id} deadLetterTargetArn"))
                        })?;
                    let count = policy
                        .get("maxReceiveCount")
                        .and_then(scalar)
                        .and_then(|c| c.parse().ok())
                        .ok_or_else(|| {
                            TemplateError::Unexpected(format!("{logical_id} maxReceiveCount"))
                        })?;
                    Some((target.to_owned(), count))
                }
            };
            queues.push(QueueDefinition {
                logical_id,
                attributes,
                redrive,
            });
        }
        queues.sort_by_key(|q| q.redrive.is_some());
        Ok(queues)
    }

    /// Every S3 bucket: its logical id and the HTTP methods its CORS rules allow.
    pub fn buckets(&self) -> Result<Vec<BucketDefinition>, TemplateError> {
        Ok(self
            .of_type("AWS::S3::Bucket")?
            .into_iter()
            .map(|(logical_id, props)| {
                let cors_methods = props
                    .get("CorsConfiguration")
                    .and_then(|c| c.get("CorsRules"))
                    .and_then(Value::as_sequence)
                    .map(|rules| {
                        rules
                            .iter()
                            .filter_map(|r| r.get("AllowedMethods")?.as_sequence())
                            .flatten()
                            .filter_map(|m| m.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let queue_notifications = props
                    .get("NotificationConfiguration")
                    .and_then(|n| n.get("QueueConfigurations"))
                    .and_then(Value::as_sequence)
                    .map(|configurations| {
                        configurations
                            .iter()
                            .filter_map(|c| {
                                let queue = reference(c.get("Queue"))?;
                                let event = c.get("Event")?.as_str()?.to_owned();
                                let prefix = c
                                    .get("Filter")
                                    .and_then(|f| f.get("S3Key"))
                                    .and_then(|k| k.get("Rules"))
                                    .and_then(Value::as_sequence)
                                    .and_then(|rules| {
                                        rules.iter().find(|r| {
                                            r.get("Name").and_then(Value::as_str) == Some("prefix")
                                        })
                                    })
                                    .and_then(|r| r.get("Value")?.as_str())
                                    .map(str::to_owned);
                                Some(QueueNotification {
                                    queue,
                                    event,
                                    prefix,
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                BucketDefinition {
                    logical_id,
                    cors_methods,
                    queue_notifications,
                }
            })
            .collect())
    }

    /// A top-level mapping by path, e.g. `["Resources", "WebSocketApi", "Properties"]`.
    pub fn get(&self, path: &[&str]) -> Option<&Value> {
        path.iter().try_fold(&self.root, |v, key| v.get(*key))
    }
}

/// An S3 bucket of the template.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketDefinition {
    pub logical_id: String,
    /// Methods of its CORS rules (locally allowed from any origin, like the default
    /// `FilesAllowedOrigins`).
    pub cors_methods: Vec<String>,
    /// Its event notifications to queues (`NotificationConfiguration.QueueConfigurations`).
    pub queue_notifications: Vec<QueueNotification>,
}

/// A bucket's notification of `event` for keys under `prefix` to the queue `queue`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueNotification {
    /// The queue's logical id.
    pub queue: String,
    pub event: String,
    pub prefix: Option<String>,
}

impl BucketDefinition {
    /// The bucket's local name: `{prefix}-{logical id}`, lowercased as bucket names must be.
    pub fn local_name(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.logical_id).to_lowercase()
    }
}

/// The WebSocket API as the template defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct WebSocketApi {
    /// e.g. `$request.body.type`.
    pub route_selection_expression: String,
    pub routes: Vec<WebSocketRoute>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebSocketRoute {
    /// `$connect`, `$disconnect`, `$default` or a custom key.
    pub key: String,
    /// The binary (`BuildProperties.Binary`) of the function its integration invokes.
    pub function: String,
    /// Two-way: the integration's response body is sent back to the caller.
    pub returns_response: bool,
}

/// An SQS event source mapping of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsEventSourceDefinition {
    pub function: String,
    pub queue_logical_id: String,
    pub batch_size: i32,
    pub report_batch_item_failures: bool,
}

/// A DynamoDB stream event source mapping of a function (`DynamoDB` event).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEventSourceDefinition {
    pub function: String,
    pub batch_size: i32,
    /// `MaximumBatchingWindowInSeconds`.
    pub batching_window_seconds: i32,
    /// `FilterCriteria.Filters[].Pattern`, as JSON texts: a record passes if any matches.
    pub filter_patterns: Vec<String>,
    pub report_batch_item_failures: bool,
}

/// A route of an HTTP API (`HttpApi` event of a function).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRouteDefinition {
    pub function: String,
    pub method: String,
    /// With `{name}` path parameters, e.g. `/conversations/{conversationId}/messages`.
    pub path: String,
    /// `Auth.Authorizer: AWS_IAM`: API Gateway answers only SigV4-signed requests of a
    /// principal allowed `execute-api:Invoke` on the route.
    pub iam: bool,
}

/// An EventBridge schedule of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleDefinition {
    pub function: String,
    pub rule: String,
    /// The period of a `rate(…)` expression.
    pub every: std::time::Duration,
}

impl Template {
    /// The (one) WebSocket API: its route selection expression and each route's function.
    pub fn websocket_api(&self) -> Result<WebSocketApi, TemplateError> {
        let apis: Vec<_> = self
            .of_type("AWS::ApiGatewayV2::Api")?
            .into_iter()
            .filter(|(_, p)| p.get("ProtocolType").and_then(Value::as_str) == Some("WEBSOCKET"))
            .collect();
        let [(api_id, api)] = apis.as_slice() else {
            return Err(TemplateError::Unexpected(format!(
                "{} WebSocket APIs (expected one)",
                apis.len()
            )));
        };
        let route_selection_expression = api
            .get("RouteSelectionExpression")
            .and_then(Value::as_str)
            .ok_or_else(|| TemplateError::Missing("RouteSelectionExpression".into()))?
            .to_owned();
        let mut routes = Vec::new();
        for (id, props) in self.of_type("AWS::ApiGatewayV2::Route")? {
            if reference(props.get("ApiId")).as_deref() != Some(api_id.as_str()) {
                continue;
            }
            let key = props
                .get("RouteKey")
                .and_then(Value::as_str)
                .ok_or_else(|| TemplateError::Missing(format!("{id} RouteKey")))?
                .to_owned();
            let integration = reference(props.get("Target"))
                .ok_or_else(|| TemplateError::Unexpected(format!("{id} Target")))?;
            let uri = reference(self.get(&[
                "Resources",
                integration.as_str(),
                "Properties",
                "IntegrationUri",
            ]))
            .ok_or_else(|| TemplateError::Unexpected(format!("{integration} IntegrationUri")))?;
            routes.push(WebSocketRoute {
                key,
                function: self.binary_of(&uri)?,
                returns_response: props.get("RouteResponseSelectionExpression").is_some(),
            });
        }
        routes.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(WebSocketApi {
            route_selection_expression,
            routes,
        })
    }

    /// Every SQS event source of every function.
    pub fn sqs_event_sources(&self) -> Result<Vec<SqsEventSourceDefinition>, TemplateError> {
        let mut sources = Vec::new();
        for (function_id, event) in self.function_events("SQS")? {
            let queue = reference(event.get("Queue"))
                .ok_or_else(|| TemplateError::Unexpected(format!("{function_id} SQS Queue")))?;
            sources.push(SqsEventSourceDefinition {
                function: self.binary_of(&function_id)?,
                queue_logical_id: queue,
                batch_size: event.get("BatchSize").and_then(Value::as_i64).unwrap_or(10) as i32,
                report_batch_item_failures: reports_batch_item_failures(event),
            });
        }
        Ok(sources)
    }

    /// Every DynamoDB stream event source of every function.
    pub fn stream_event_sources(&self) -> Result<Vec<StreamEventSourceDefinition>, TemplateError> {
        let mut sources = Vec::new();
        for (function_id, event) in self.function_events("DynamoDB")? {
            let number = |name: &str, default: i64| -> Result<i32, TemplateError> {
                match event.get(name) {
                    None => Ok(default as i32),
                    Some(value) => self.number_value(value).map(|n| n as i32).ok_or_else(|| {
                        TemplateError::Unexpected(format!(
                            "{function_id} {name}: a number or !Ref to a parameter with a numeric Default"
                        ))
                    }),
                }
            };
            let filter_patterns = event
                .get("FilterCriteria")
                .and_then(|f| f.get("Filters"))
                .and_then(Value::as_sequence)
                .map(|filters| {
                    filters
                        .iter()
                        .map(|f| {
                            f.get("Pattern")
                                .and_then(Value::as_str)
                                .map(str::to_owned)
                                .ok_or_else(|| {
                                    TemplateError::Unexpected(format!(
                                        "{function_id} filter Pattern"
                                    ))
                                })
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?
                .unwrap_or_default();
            sources.push(StreamEventSourceDefinition {
                function: self.binary_of(&function_id)?,
                batch_size: number("BatchSize", 100)?,
                batching_window_seconds: number("MaximumBatchingWindowInSeconds", 0)?,
                filter_patterns,
                report_batch_item_failures: reports_batch_item_failures(event),
            });
        }
        Ok(sources)
    }

    /// Every HTTP API route of every function.
    pub fn http_routes(&self) -> Result<Vec<HttpRouteDefinition>, TemplateError> {
        let mut routes = Vec::new();
        for (function_id, event) in self.function_events("HttpApi")? {
            let text = |name: &str| {
                event
                    .get(name)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| TemplateError::Missing(format!("{function_id} HttpApi {name}")))
            };
            routes.push(HttpRouteDefinition {
                function: self.binary_of(&function_id)?,
                method: text("Method")?.to_uppercase(),
                path: text("Path")?,
                iam: event
                    .get("Auth")
                    .and_then(|auth| auth.get("Authorizer"))
                    .and_then(Value::as_str)
                    == Some("AWS_IAM"),
            });
        }
        routes.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(routes)
    }

    /// Every `rate(…)` schedule of every function (`Schedule` and `ScheduleV2` events).
    pub fn schedules(&self) -> Result<Vec<ScheduleDefinition>, TemplateError> {
        let mut schedules = Vec::new();
        for kind in ["Schedule", "ScheduleV2"] {
            for (function_id, event) in self.function_events(kind)? {
                let expression = event
                    .get(if kind == "Schedule" {
                        "Schedule"
                    } else {
                        "ScheduleExpression"
                    })
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        TemplateError::Missing(format!("{function_id} schedule expression"))
                    })?;
                let every = parse_rate(expression).ok_or_else(|| {
                    TemplateError::Unexpected(format!(
                        "{function_id}: only rate(…) schedules run locally, not {expression:?}"
                    ))
                })?;
                schedules.push(ScheduleDefinition {
                    function: self.binary_of(&function_id)?,
                    rule: format!("{function_id}-{kind}"),
                    every,
                });
            }
        }
        Ok(schedules)
    }

    /// The inline policy statements of every function, by binary name.
    pub fn function_policies(
        &self,
    ) -> Result<BTreeMap<String, Vec<PolicyStatement>>, TemplateError> {
        let mut policies = BTreeMap::new();
        for (id, props) in self.of_type("AWS::Serverless::Function")? {
            let mut statements = Vec::new();
            for policy in props
                .get("Policies")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let listed = policy
                    .get("Statement")
                    .and_then(Value::as_sequence)
                    .ok_or_else(|| TemplateError::Unexpected(format!("{id} Policies")))?;
                for statement in listed {
                    // `!If [condition, statement, AWS::NoValue]`: the statement as it is when
                    // the condition holds (the most the function may be allowed).
                    let statement = match statement {
                        Value::Tagged(t) if t.tag == "!If" => {
                            match t.value.as_sequence().and_then(|s| s.get(1)) {
                                Some(Value::Mapping(_)) => &t.value.as_sequence().unwrap()[1],
                                _ => continue,
                            }
                        }
                        other => other,
                    };
                    statements.push(policy_statement(&id, statement)?);
                }
            }
            policies.insert(self.binary_of(&id)?, statements);
        }
        Ok(policies)
    }

    /// Every function's environment variables (its own, over `Globals`), by binary name; the
    /// values as written (strings, `!Ref`s, `!Sub`s).
    pub fn function_environment(
        &self,
    ) -> Result<BTreeMap<String, BTreeMap<String, Value>>, TemplateError> {
        let variables = |props: Option<&Value>| -> BTreeMap<String, Value> {
            props
                .and_then(|p| p.get("Environment"))
                .and_then(|e| e.get("Variables"))
                .and_then(Value::as_mapping)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
                .collect()
        };
        let globals = variables(self.get(&["Globals", "Function"]));
        let mut all = BTreeMap::new();
        for (id, props) in self.of_type("AWS::Serverless::Function")? {
            let mut env = globals.clone();
            env.extend(variables(Some(props)));
            all.insert(self.binary_of(&id)?, env);
        }
        Ok(all)
    }

    /// A number, or a `!Ref` to a parameter: its `Default` (what a deploy without overrides
    /// gets, and what the local stack runs).
    fn number_value(&self, value: &Value) -> Option<i64> {
        match value {
            Value::Tagged(t) if t.tag == "!Ref" => {
                let default = self.parameter(t.value.as_str()?)?.get("Default")?;
                default
                    .as_i64()
                    .or_else(|| default.as_str().and_then(|s| s.parse().ok()))
            }
            other => other.as_i64(),
        }
    }

    /// The parameter of this name, if any.
    pub fn parameter(&self, name: &str) -> Option<&Value> {
        self.root.get("Parameters").and_then(|p| p.get(name))
    }

    /// Whether a parameter of this name exists.
    pub fn has_parameter(&self, name: &str) -> bool {
        self.root
            .get("Parameters")
            .and_then(Value::as_mapping)
            .is_some_and(|p| p.contains_key(name))
    }

    /// Whether a resource of this logical id exists.
    pub fn has_resource(&self, logical_id: &str) -> bool {
        self.resources()
            .map(|r| r.contains_key(logical_id))
            .unwrap_or(false)
    }

    /// (function logical id, event properties) of every event of `kind`.
    fn function_events(&self, kind: &str) -> Result<Vec<(String, &Value)>, TemplateError> {
        let mut events = Vec::new();
        for (id, props) in self.of_type("AWS::Serverless::Function")? {
            if let Some(map) = props.get("Events").and_then(Value::as_mapping) {
                for event in map.values() {
                    if event.get("Type").and_then(Value::as_str) == Some(kind) {
                        if let Some(properties) = event.get("Properties") {
                            events.push((id.clone(), properties));
                        }
                    }
                }
            }
        }
        Ok(events)
    }

    /// `BuildProperties.Binary` of a function resource.
    fn binary_of(&self, function_id: &str) -> Result<String, TemplateError> {
        self.get(&[
            "Resources",
            function_id,
            "Metadata",
            "BuildProperties",
            "Binary",
        ])
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            TemplateError::Missing(format!("{function_id} Metadata.BuildProperties.Binary"))
        })
    }
}

fn one_or_many(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Sequence(items)) => items.iter().collect(),
        Some(one) => vec![one],
        None => Vec::new(),
    }
}

fn policy_statement(function: &str, statement: &Value) -> Result<PolicyStatement, TemplateError> {
    let unexpected = |what: &str| TemplateError::Unexpected(format!("{function} policy {what}"));
    let actions = one_or_many(statement.get("Action"))
        .into_iter()
        .map(|a| {
            a.as_str()
                .map(str::to_owned)
                .ok_or_else(|| unexpected("Action"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let resources = one_or_many(statement.get("Resource"))
        .into_iter()
        .map(|r| match r {
            Value::String(s) if s == "*" => Ok(PolicyResource::Any),
            Value::String(s) => Ok(PolicyResource::Literal(s.clone())),
            Value::Tagged(t) if t.tag == "!Sub" => Ok(PolicyResource::Sub(substituted(&t.value))),
            tagged @ Value::Tagged(_) => reference(Some(tagged))
                .map(PolicyResource::Ref)
                .ok_or_else(|| unexpected("Resource")),
            _ => Err(unexpected("Resource")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PolicyStatement {
        effect: statement
            .get("Effect")
            .and_then(Value::as_str)
            .ok_or_else(|| unexpected("Effect"))?
            .to_owned(),
        actions,
        resources,
        has_condition: statement.get("Condition").is_some(),
    })
}

/// The `${…}` names of a `!Sub` (its string, or the string of its `[string, map]` form; the
/// map's own variables are listed as `var:Name`).
fn substituted(value: &Value) -> Vec<String> {
    let (text, map) = match value {
        Value::String(text) => (text.as_str(), None),
        Value::Sequence(items) => (
            items.first().and_then(Value::as_str).unwrap_or_default(),
            items.get(1).and_then(Value::as_mapping),
        ),
        _ => ("", None),
    };
    text.split("${")
        .skip(1)
        .filter_map(|part| part.split('}').next())
        .map(|name| name.split('.').next().unwrap_or(name))
        .map(|name| {
            let local = map.is_some_and(|m| m.contains_key(name));
            if local {
                format!("var:{name}")
            } else {
                name.to_owned()
            }
        })
        .collect()
}

/// The logical id a `!Ref X`, `!GetAtt X.Arn` or `!Sub "…${X}…"`/`"…${X.Arn}…"` refers to
/// (the first `${…}` that is not a pseudo parameter).
pub fn reference(value: Option<&Value>) -> Option<String> {
    let Value::Tagged(tagged) = value? else {
        return None;
    };
    let text = tagged.value.as_str()?;
    match tagged.tag.to_string().as_str() {
        "!Ref" => Some(text.to_owned()),
        "!GetAtt" => text.split('.').next().map(str::to_owned),
        "!Sub" => text
            .split("${")
            .skip(1)
            .filter_map(|part| part.split('}').next())
            .find(|name| !name.starts_with("AWS::"))
            .and_then(|name| name.split('.').next())
            .map(str::to_owned),
        _ => None,
    }
}

/// `rate(5 minutes)` → 300 s.
pub fn parse_rate(expression: &str) -> Option<std::time::Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (count, unit) = inner.trim().split_once(' ')?;
    let count: u64 = count.parse().ok()?;
    let seconds = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    (count > 0).then(|| std::time::Duration::from_secs(count * seconds))
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether an event source mapping's `FunctionResponseTypes` has `ReportBatchItemFailures`.
fn reports_batch_item_failures(event: &Value) -> bool {
    event
        .get("FunctionResponseTypes")
        .and_then(Value::as_sequence)
        .is_some_and(|t| {
            t.iter()
                .any(|v| v.as_str() == Some("ReportBatchItemFailures"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_sources_window_may_be_a_parameter_and_is_its_default() {
        let template = Template::workspace().unwrap();
        let [indexer] = template.stream_event_sources().unwrap().try_into().unwrap();
        let default = template.parameter("SearchIndexWindow").unwrap()["Default"]
            .as_i64()
            .unwrap();
        assert_eq!(i64::from(indexer.batching_window_seconds), default);
        let with = |window: &str| {
            Template::parse(&format!(
                "Parameters:\n  W:\n    Type: Number\n    Default: 7\nResources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata:\n      BuildProperties:\n        Binary: f\n    Properties:\n      Events:\n        S:\n          Type: DynamoDB\n          Properties:\n            Stream: x\n            MaximumBatchingWindowInSeconds: {window}\n"
            ))
            .unwrap()
            .stream_event_sources()
        };
        assert_eq!(with("!Ref W").unwrap()[0].batching_window_seconds, 7);
        assert_eq!(with("3").unwrap()[0].batching_window_seconds, 3);
        assert!(with("!Ref Missing").is_err(), "not silently 0");
    }

    #[test]
    fn reads_the_workspace_template() {
        let template = Template::workspace().unwrap();
        let table = template.table().unwrap();
        assert_eq!(
            table.key_schema,
            vec![("PK".into(), "HASH".into()), ("SK".into(), "RANGE".into())]
        );
        let names: Vec<_> = table.indexes.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["GSI1"]);
        assert_eq!(table.ttl_attribute.as_deref(), Some("ttl"));
        let queues = template.queues().unwrap();
        let broadcast = queues
            .iter()
            .find(|q| q.logical_id == "BroadcastQueue")
            .unwrap();
        assert_eq!(
            broadcast.redrive,
            Some(("BroadcastDeadLetterQueue".into(), 5))
        );
        assert_eq!(broadcast.attributes["VisibilityTimeout"], "180");
        assert!(broadcast.is_fifo());
        assert!(queues[0].redrive.is_none(), "dead-letter queues come first");
    }

    #[test]
    fn reads_routes_event_sources_and_schedules() {
        let template = Template::workspace().unwrap();
        let api = template.websocket_api().unwrap();
        assert_eq!(api.route_selection_expression, "$request.body.type");
        let routes: Vec<_> = api
            .routes
            .iter()
            .map(|r| (r.key.as_str(), r.function.as_str(), r.returns_response))
            .collect();
        let lifecycle: Vec<_> = routes.iter().filter(|r| r.0.starts_with('$')).collect();
        assert_eq!(
            lifecycle,
            [
                &("$connect", "connect", false),
                &("$default", "route", true),
                &("$disconnect", "disconnect", false)
            ]
        );
        // Every file frame type, and nothing else, is a two-way route to file-share.
        let mut file_routes: Vec<_> = routes.iter().filter(|r| !r.0.starts_with('$')).collect();
        file_routes.sort();
        let mut expected: Vec<_> = messaging_core::protocol::FILE_TYPES
            .iter()
            .map(|t| (*t, "file-share", true))
            .collect();
        expected.sort();
        assert_eq!(file_routes, expected.iter().collect::<Vec<_>>());
        let sources = template.sqs_event_sources().unwrap();
        let mut wired: Vec<(&str, &str, i32)> = sources
            .iter()
            .map(|s| {
                assert!(s.report_batch_item_failures, "{s:?}");
                (
                    s.function.as_str(),
                    s.queue_logical_id.as_str(),
                    s.batch_size,
                )
            })
            .collect();
        wired.sort();
        assert_eq!(
            wired,
            [
                ("broadcast", "BroadcastQueue", 10),
                ("image-preview", "UploadsQueue", 5),
                ("lifecycle", "LifecycleQueue", 1),
                ("notify-batch", "NotifyQueue", 1)
            ]
        );
        // The workspace's schedules: the notification batch, and the daily retention sweep.
        let mut every: Vec<(String, u64)> = template
            .schedules()
            .unwrap()
            .into_iter()
            .map(|s| (s.function, s.every.as_secs()))
            .collect();
        every.sort();
        assert_eq!(
            every,
            [("lifecycle".into(), 86_400), ("notify-batch".into(), 300)]
        );
        // The files bucket notifies the uploads queue of uploads under tenants/ only.
        let files = template
            .buckets()
            .unwrap()
            .into_iter()
            .find(|b| b.logical_id == "FilesBucket")
            .unwrap();
        assert_eq!(
            files.queue_notifications,
            [QueueNotification {
                queue: "UploadsQueue".into(),
                event: "s3:ObjectCreated:*".into(),
                prefix: Some("tenants/".into()),
            }]
        );

        let scheduled = Template::parse(
            "Resources:\n  Batch:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildProperties: {Binary: notify-batch}}\n    Properties:\n      Events:\n        Every5:\n          Type: Schedule\n          Properties: {Schedule: rate(5 minutes)}\n",
        )
        .unwrap();
        let schedules = scheduled.schedules().unwrap();
        assert_eq!(schedules.len(), 1);
        assert_eq!(schedules[0].function, "notify-batch");
        assert_eq!(schedules[0].every, std::time::Duration::from_secs(300));
        assert_eq!(
            parse_rate("rate(1 hour)"),
            Some(std::time::Duration::from_secs(3600))
        );
        assert_eq!(parse_rate("cron(0 12 * * ? *)"), None);
    }
}
