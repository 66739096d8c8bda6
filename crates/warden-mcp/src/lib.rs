#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod classify;
mod client;
pub mod detect;
pub mod finding;
#[cfg(feature = "http")]
mod http;
pub mod jsonrpc;
pub mod lock;
mod names;
#[cfg(feature = "proxy")]
pub mod proxy;
pub mod report;
mod scan;
pub mod source;
#[cfg(feature = "http")]
mod sse;
#[cfg(feature = "http")]
mod tls;

pub use classify::{ClassifyError, ModelVerdict, TextClassifier};
pub use client::ClientError;
pub use finding::{Category, Finding, Severity};
pub use lock::{Lock, LockError};
#[cfg(feature = "proxy")]
pub use proxy::{Gateway, ProxyConfig, ProxyError};
pub use report::{Coverage, Format, ScanError, ScanReport};
pub use scan::{ServerTools, scan_servers};

/// Internals the fuzz targets drive (`fuzz/`); not a stable API.
#[doc(hidden)]
#[cfg(feature = "http")]
pub mod fuzzing {
    pub use crate::sse::{Event, Field, Parser as SseParser, TooLarge};
}
