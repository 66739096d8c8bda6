#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod config;
mod error;
pub mod handshake;
mod score;
mod store;
mod tier;

pub use config::{Config, IdentityConfig, TrustConfig};
pub use error::TrustError;
pub use score::{Outcome, State};
pub use store::{Change, Clock, Event, ManualClock, Score, SystemClock, TrustStore};
pub use tier::Tier;
