//! Entry points for the fuzz targets in `fuzz/` (not a stable API).

use warden_core::Action;

/// The host `domains:` would compare for `url`, or `None` when the URL is rejected.
pub fn domain_host(url: &str) -> Option<(String, Option<u16>)> {
    let action = Action::new("http_request").with_arg("url", url);
    match crate::domain::target(&action) {
        crate::domain::Target::Host { host, port } => Some((host, port)),
        _ => None,
    }
}

/// Panics when the shortcut `domains:` takes for plain host names disagrees with the full
/// URL parser on `url` (see `domain::plain_target`).
pub fn check_domain_shortcut(url: &str) {
    if let Err(e) = crate::domain::shortcut_agrees(url) {
        panic!("{e}");
    }
}
