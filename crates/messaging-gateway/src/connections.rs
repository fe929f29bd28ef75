//! The live WebSocket connections, by id: what `@connections` reads and writes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

/// Something to do on a connection's socket.
#[derive(Debug)]
pub enum Outbound {
    Text(String),
    Binary(Vec<u8>),
    /// Close with this code and reason (the server ends the connection).
    Close(u16, String),
}

/// One live connection.
#[derive(Debug)]
pub struct Live {
    pub id: String,
    /// Epoch milliseconds.
    pub connected_at: i64,
    pub source_ip: String,
    pub user_agent: Option<String>,
    last_active_at: AtomicI64,
    tx: mpsc::Sender<Outbound>,
}

impl Live {
    pub fn new(
        id: String,
        connected_at: i64,
        source_ip: String,
        user_agent: Option<String>,
        tx: mpsc::Sender<Outbound>,
    ) -> Self {
        Self {
            id,
            connected_at,
            source_ip,
            user_agent,
            last_active_at: AtomicI64::new(connected_at),
            tx,
        }
    }

    /// `identity` as API Gateway reports it (events and `@connections` GET).
    pub fn identity(&self) -> serde_json::Value {
        let mut identity = serde_json::json!({ "sourceIp": self.source_ip });
        if let Some(agent) = &self.user_agent {
            identity["userAgent"] = serde_json::json!(agent);
        }
        identity
    }

    pub fn touch(&self, now: i64) {
        self.last_active_at.store(now, Ordering::Relaxed);
    }

    pub fn last_active_at(&self) -> i64 {
        self.last_active_at.load(Ordering::Relaxed)
    }

    /// Queues something for the socket; `false` when the connection is already closing.
    pub async fn send(&self, outbound: Outbound) -> bool {
        self.tx.send(outbound).await.is_ok()
    }
}

/// Every live connection, the most there have been at once, and the `@connections` POSTs
/// delivered (what API Gateway bills as outbound messages).
#[derive(Debug, Default)]
pub struct Connections {
    live: RwLock<HashMap<String, Arc<Live>>>,
    peak: AtomicUsize,
    posts: AtomicU64,
}

impl Connections {
    pub fn insert(&self, live: Arc<Live>) {
        if let Ok(mut map) = self.live.write() {
            map.insert(live.id.clone(), live);
            self.peak.fetch_max(map.len(), Ordering::Relaxed);
        }
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Live>> {
        self.live.write().ok()?.remove(id)
    }

    pub fn get(&self, id: &str) -> Option<Arc<Live>> {
        self.live.read().ok()?.get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Live>> {
        self.live
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.live.read().map(|m| m.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    pub(crate) fn count_post(&self) {
        self.posts.fetch_add(1, Ordering::Relaxed);
    }

    /// `@connections` POSTs delivered so far.
    pub fn posts(&self) -> u64 {
        self.posts.load(Ordering::Relaxed)
    }
}
