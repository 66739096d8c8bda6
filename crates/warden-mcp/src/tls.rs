//! The one HTTP client constructor for everything that reaches a Streamable HTTP server
//! (scanning by URL, the HTTP proxy's upstream): hyper over rustls (ring provider), for
//! `http://` and `https://` alike.
//!
//! Server certificates are verified against the operating system's trust store plus, when
//! given, a private CA (`--ca-cert FILE`, PEM). Host names are always verified; there is no
//! way to skip verification.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use thiserror::Error;

/// A client for `http://` and `https://` URLs, sending bodies of type `B`.
pub type HttpClient<B> = Client<HttpsConnector<HttpConnector>, B>;

/// Why the client could not be set up.
#[derive(Debug, Error)]
pub enum TlsError {
    /// The CA file could not be read or holds no PEM certificate.
    #[error("cannot use the CA certificate {path}: {why}")]
    CaCert {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// rustls refused the configuration.
    #[error("cannot set up TLS: {0}")]
    Config(String),
}

/// Parse an `http://` or `https://` URL with a host; `Err` says what is wrong with it.
pub(crate) fn http_uri(url: &str) -> Result<hyper::Uri, &'static str> {
    let uri: hyper::Uri = url.parse().map_err(|_| "not a URL")?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("only http:// and https:// URLs are supported");
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err("the URL has no host");
    }
    Ok(uri)
}

/// How long connecting (TCP, before TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The roots: the OS trust store plus the certificates in `ca_cert`.
fn roots(ca_cert: Option<&Path>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    // A store that cannot be read (or has unparsable entries) leaves fewer roots; with none
    // at all, only `--ca-cert` servers verify, and the handshake error says so.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_cert {
        let bad = |why: String| TlsError::CaCert {
            path: path.display().to_string(),
            why,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| bad(e.to_string()))?;
        }
    }
    Ok(roots)
}

/// The client, trusting the OS roots and `ca_cert` (a PEM file of one or more CA
/// certificates). Needs a Tokio runtime to send requests, not to be built.
pub fn client<B>(ca_cert: Option<&Path>) -> Result<HttpClient<B>, TlsError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots(ca_cert)?)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// An error with its causes (`a: b: c`): hyper's own message ("client error (Connect)")
/// hides the certificate problem, which is in the chain.
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    if out.contains("invalid peer certificate") {
        out.push_str(" (for a server with a private CA, pass its certificate with --ca-cert FILE)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = client::<http_body_util::Empty<hyper::body::Bytes>>(Some(&empty)).unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        let missing = dir.path().join("missing.pem");
        assert!(client::<http_body_util::Empty<hyper::body::Bytes>>(Some(&missing)).is_err());
    }

    #[test]
    fn a_generated_ca_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca.pem()).unwrap();
        assert!(client::<http_body_util::Empty<hyper::body::Bytes>>(Some(&path)).is_ok());
    }
}
