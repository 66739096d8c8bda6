#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod api;
mod canned;
mod config;
mod exchange;
mod feed;
mod handshake;
mod metrics;
mod reload;
mod server;
mod session;
pub mod webhook;

pub use api::{OPENAPI, Route};
pub use config::{DashboardAccess, ServeError, ServerConfig};
pub use metrics::{Gauges, InFlight, Metrics};
pub use reload::{ReloadError, ReloadOutcome, Reloader};
pub use server::DecisionServer;
