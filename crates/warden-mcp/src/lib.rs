#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod detect;
pub mod finding;
#[cfg(feature = "http")]
pub mod http;
pub mod jsonrpc;
pub mod lock;
pub mod names;
#[cfg(feature = "proxy")]
pub mod proxy;
#[cfg(feature = "proxy")]
pub mod proxy_http;
pub mod report;
pub mod scan;
pub mod source;
#[cfg(feature = "http")]
pub mod tls;

pub use finding::{Category, Finding, Severity};
pub use lock::{Lock, LockError};
#[cfg(feature = "proxy")]
pub use proxy::{Gateway, ProxyConfig, ProxyError};
pub use report::Format;
pub use scan::{ServerTools, scan_servers};
