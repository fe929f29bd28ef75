//! The DynamoDB stream event source mapping of each function with a `DynamoDB` event in the
//! template: every batching window, read what the table's stream has past the last batch,
//! invoke with it, and hand the records from a reported failure over again.

use std::sync::Arc;
use std::time::Duration;

use messaging_devstack::stream_source::StreamEventSource;
use tracing::{info, warn};

use crate::Shared;

pub(crate) async fn run(shared: Arc<Shared>, source: StreamEventSource, every: Duration) {
    let mut shutdown = shared.shutdown.clone();
    let function = source.definition().function.clone();
    info!(%function, every_ms = every.as_millis() as u64, "DynamoDB stream event source mapping started");
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
        // One batch a window, and at once another while they come full.
        loop {
            let event = match source.next_batch().await {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(e) => {
                    warn!(error = %format!("{e:#}"), "reading the table's stream failed; retrying");
                    break;
                }
            };
            let full = source.is_full(&event);
            match shared.functions.invoke(&function, event.clone()).await {
                Ok(response) => {
                    source.complete(&event, Ok(&response)).await;
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    warn!(error = %e, %function, "function failed; the batch is handed over again");
                    source.complete(&event, Err(())).await;
                    break;
                }
            }
        }
    }
}
