//! The service set: every function's service built from one set of parts. The local gateway,
//! the tests and the benchmarks run all the functions together and build them here; a Lambda
//! builds only its own, from its own environment (`XService::from_env`).

use crate::identity::Verifier;
use messaging_aws::{
    BroadcastQueue, ConnectionsApi, FileStorage, Gauges, Mailer, MessagingTable, Objects, Sns,
    WorkQueue,
};
use messaging_core::signed::Signer;

use crate::broadcast::BroadcastService;
use crate::config::{self, ConfigError};
use crate::connect::ConnectService;
use crate::disconnect::DisconnectService;
use crate::file_share::FileShareService;
use crate::http_api::HttpApiService;
use crate::image_preview::ImagePreviewService;
use crate::lifecycle::LifecycleService;
use crate::notify_batch::{NotifyBatchService, DEFAULT_WINDOW_MILLIS};
use crate::route::RouteService;
use crate::search_indexer::SearchIndexerService;
use crate::service_api::ServiceApiService;
use crate::throttle::Limiter;
use messaging_core::limits::RateLimits;

/// What the functions are made of: the stack's resources and settings.
#[derive(Clone)]
pub struct Parts {
    pub table: MessagingTable,
    pub queue: BroadcastQueue,
    pub dead_letters: BroadcastQueue,
    /// The `@connections` API of the WebSocket API's stage.
    pub connections: ConnectionsApi,
    pub storage: FileStorage,
    /// The files bucket's objects (image previews).
    pub objects: Objects,
    /// Signs page cursors and unsubscribe links.
    pub signer: Signer,
    pub verifier: Verifier,
    /// `@connections` posts in flight per broadcast job.
    pub fanout_concurrency: usize,
    /// A new message's recipients the route function posts to itself.
    pub direct_fanout: usize,
    pub mailer: Mailer,
    pub sns: Sns,
    pub gauges: Gauges,
    /// The portal address in emails, `{clientId}` replaced.
    pub portal_url: String,
    /// The HTTP API's `/unsubscribe`.
    pub unsubscribe_url: String,
    /// Emails per second at most.
    pub max_send_rate: f64,
    /// Whether notification text messages are sent.
    pub sms_enabled: bool,
    /// The notification batching window.
    pub window_millis: i64,
    /// Rate limits of tenants that have none of their own.
    pub rate_limits: RateLimits,
    /// The notification batch's work queue.
    pub notify_queue: WorkQueue,
    /// Notification workers that may run at once.
    pub notify_workers: usize,
    /// The steps of exports and erasures.
    pub lifecycle_queue: WorkQueue,
}

impl Parts {
    /// Every function's settings from one environment (the local gateway is configured like
    /// all the functions at once), with `@connections` at `connections_endpoint`.
    pub async fn from_env(
        sdk: &aws_config::SdkConfig,
        connections_endpoint: &str,
    ) -> Result<Self, ConfigError> {
        let (signer, verifier) =
            tokio::try_join!(config::signer(sdk), config::token_verifier(sdk))?;
        Ok(Self {
            table: config::table(sdk)?,
            queue: config::broadcast_queue(sdk)?,
            dead_letters: config::broadcast_dead_letter_queue(sdk)?,
            connections: config::connections_api_at(sdk, connections_endpoint)?,
            storage: FileStorage::new(sdk, config::required("FILES_BUCKET")?),
            objects: Objects::new(sdk, config::required("FILES_BUCKET")?),
            signer,
            verifier,
            fanout_concurrency: config::fanout_concurrency()?,
            direct_fanout: config::direct_fanout()?,
            mailer: config::mailer(sdk)?,
            sns: config::sns(sdk),
            gauges: config::gauges(sdk),
            portal_url: config::required("PORTAL_URL")?,
            unsubscribe_url: config::unsubscribe_url()?,
            max_send_rate: config::ses_max_send_rate()?,
            sms_enabled: config::sms_enabled()?,
            window_millis: DEFAULT_WINDOW_MILLIS,
            rate_limits: config::rate_limits()?,
            notify_queue: config::notify_queue(sdk)?,
            notify_workers: config::notify_workers()?,
            lifecycle_queue: config::lifecycle_queue(sdk)?,
        })
    }
}

/// Every function's service.
pub struct Services {
    pub connect: ConnectService,
    pub disconnect: DisconnectService,
    pub route: RouteService,
    pub file_share: FileShareService,
    pub http_api: HttpApiService,
    pub service_api: ServiceApiService,
    pub image_preview: ImagePreviewService,
    pub lifecycle: LifecycleService,
    pub broadcast: BroadcastService,
    pub notify_batch: NotifyBatchService,
    pub search_indexer: SearchIndexerService,
}

impl Services {
    pub fn new(parts: &Parts) -> Self {
        let p = parts.clone();
        Self {
            connect: ConnectService {
                table: p.table.clone(),
                verifier: p.verifier.clone(),
                queue: p.queue.clone(),
            },
            disconnect: DisconnectService {
                table: p.table.clone(),
                queue: p.queue.clone(),
            },
            route: RouteService {
                table: p.table.clone(),
                queue: p.queue.clone(),
                cursors: p.signer.clone(),
                sns: p.sns.clone(),
                limiter: Limiter::new(p.rate_limits),
                callers: Default::default(),
                api: p.connections.clone(),
                fanout_concurrency: p.fanout_concurrency,
                direct_fanout: p.direct_fanout,
            },
            file_share: FileShareService {
                table: p.table.clone(),
                queue: p.queue.clone(),
                storage: p.storage.clone(),
                cursors: p.signer.clone(),
                limiter: Limiter::new(p.rate_limits),
                callers: Default::default(),
            },
            http_api: HttpApiService {
                table: p.table.clone(),
                cursors: p.signer.clone(),
                verifier: p.verifier,
                jobs: p.lifecycle_queue.clone(),
                storage: p.storage.clone(),
            },
            service_api: ServiceApiService {
                table: p.table.clone(),
                queue: p.queue.clone(),
                jobs: p.lifecycle_queue.clone(),
                storage: p.storage.clone(),
            },
            lifecycle: LifecycleService {
                table: p.table.clone(),
                queue: p.lifecycle_queue,
                objects: p.objects.clone(),
                page_limit: None,
            },
            image_preview: ImagePreviewService {
                table: p.table.clone(),
                objects: p.objects,
            },
            broadcast: BroadcastService {
                table: p.table.clone(),
                api: p.connections,
                queue: p.queue,
                dead_letters: p.dead_letters,
                concurrency: p.fanout_concurrency,
                fanout_per_run: crate::broadcast::FANOUT_PER_RUN,
                first_read: crate::broadcast::FIRST_READ,
            },
            search_indexer: SearchIndexerService {
                table: p.table.clone(),
            },
            notify_batch: NotifyBatchService {
                table: p.table,
                mailer: p.mailer,
                sns: p.sns,
                gauges: p.gauges,
                work: p.notify_queue,
                workers: p.notify_workers,
                portal_url: p.portal_url,
                unsubscribe_url: p.unsubscribe_url,
                signer: p.signer,
                max_send_rate: p.max_send_rate,
                sms_enabled: p.sms_enabled,
                window_millis: p.window_millis,
                page_per_shard: crate::notify_batch::PAGE_PER_SHARD,
                marker_grace_millis: crate::notify_batch::MARKER_GRACE_MILLIS,
            },
        }
    }
}
