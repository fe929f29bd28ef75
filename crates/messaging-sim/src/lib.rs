//! A deterministic discrete-event simulator of StackPro Messaging on AWS (docs/scale.md):
//! the pipeline's calls and AWS's quotas, with a seed, so that where the design breaks is
//! computed, not guessed, and computed the same on every run.
//!
//! - [`engine`]: the clock, the event queue, the seeded random numbers.
//! - [`quota`]: token buckets, concurrency pools, latency percentiles, time series.
//! - [`model`]: the quotas, the service times (AWS's, or the bench's) and the designs.
//! - [`delivery`]: messages from send to every recipient (route, queue, broadcast, posts).
//! - [`storm`]: `$connect` storms and the partitions their writes land in.
//! - [`scenarios`]: the scenarios of docs/scale.md and the bench's validation.

pub mod delivery;
pub mod engine;
pub mod model;
pub mod quota;
pub mod scenarios;
pub mod storm;
