//! Route selection, from the template's route selection expression and route keys, so local
//! and deployed routing cannot drift apart.

use std::collections::HashMap;

use messaging_devstack::{WebSocketApi, WebSocketRoute};
use serde_json::Value;

pub const CONNECT: &str = "$connect";
pub const DISCONNECT: &str = "$disconnect";
pub const DEFAULT: &str = "$default";

#[derive(Debug, Clone)]
pub struct RouteTable {
    /// The JSON path of `$request.body.…`.
    path: Vec<String>,
    routes: HashMap<String, WebSocketRoute>,
}

impl RouteTable {
    pub fn new(api: &WebSocketApi) -> anyhow::Result<Self> {
        let path = api
            .route_selection_expression
            .strip_prefix("$request.body.")
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "route selection expression {:?} is not of the form $request.body.<field>",
                    api.route_selection_expression
                )
            })?
            .split('.')
            .map(str::to_owned)
            .collect();
        let routes = api
            .routes
            .iter()
            .map(|r| (r.key.clone(), r.clone()))
            .collect();
        Ok(Self { path, routes })
    }

    pub fn get(&self, key: &str) -> Option<&WebSocketRoute> {
        self.routes.get(key)
    }

    /// The route API Gateway picks for a message: the route whose key equals the value at the
    /// selection expression, else `$default` (also for bodies that are not JSON). `None` when
    /// neither exists: API Gateway then answers "Forbidden".
    pub fn select(&self, body: &str) -> Option<&WebSocketRoute> {
        let selected = serde_json::from_str::<Value>(body).ok().and_then(|json| {
            let value = self.path.iter().try_fold(&json, |v, key| v.get(key))?;
            let key = value.as_str()?;
            (![CONNECT, DISCONNECT, DEFAULT].contains(&key)).then_some(key.to_owned())
        });
        selected
            .and_then(|key| self.routes.get(&key))
            .or_else(|| self.routes.get(DEFAULT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(keys: &[&str]) -> RouteTable {
        RouteTable::new(&WebSocketApi {
            route_selection_expression: "$request.body.action".into(),
            routes: keys
                .iter()
                .map(|k| WebSocketRoute {
                    key: (*k).into(),
                    function: format!("fn{k}"),
                    returns_response: false,
                })
                .collect(),
        })
        .unwrap()
    }

    #[test]
    fn a_matching_key_wins_and_everything_else_falls_back_to_default() {
        let t = table(&["$connect", "$default", "sendmessage"]);
        assert_eq!(
            t.select(r#"{"action":"sendmessage"}"#).unwrap().key,
            "sendmessage"
        );
        assert_eq!(t.select(r#"{"action":"other"}"#).unwrap().key, "$default");
        assert_eq!(t.select(r#"{"action":5}"#).unwrap().key, "$default");
        assert_eq!(t.select("not json").unwrap().key, "$default");
        // A body cannot select the lifecycle routes.
        assert_eq!(
            t.select(r#"{"action":"$connect"}"#).unwrap().key,
            "$default"
        );
    }

    #[test]
    fn without_default_an_unmatched_message_has_no_route() {
        let t = table(&["sendmessage"]);
        assert!(t.select(r#"{"action":"nope"}"#).is_none());
    }

    #[test]
    fn the_workspace_template_routes_everything_to_route() {
        let api = messaging_devstack::Template::workspace()
            .unwrap()
            .websocket_api()
            .unwrap();
        let t = RouteTable::new(&api).unwrap();
        assert_eq!(
            t.select(r#"{"type":"CHAT_MESSAGE"}"#).unwrap().function,
            "route"
        );
        assert_eq!(t.get(CONNECT).unwrap().function, "connect");
        assert!(t.get(DEFAULT).unwrap().returns_response);
    }
}
