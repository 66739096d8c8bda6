//! `verifiers:` (a document's chat endpoints) and a rule's `verify:`, checked at load: a bad
//! URL, an unknown verifier or an impossible quorum is a problem at its line and column.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::{Node, Value};
use super::Compiler;
use crate::diagnostic::did_you_mean;
use crate::verify::{
    DEFAULT_MAX_DRIFT_MILLI, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, Endpoint, LOCAL_MODEL,
    MAX_DRIFT_MILLI, MAX_RESPONSE_BYTES, MAX_TIMEOUT, MAX_VERIFIERS, RULES, Verifier, Verify,
    parse_url,
};

const ENDPOINT_FIELDS: &[&str] = &[
    "url",
    "model",
    "timeout",
    "max_response_bytes",
    "api_key_env",
];
const VERIFY_FIELDS: &[&str] = &["quorum", "of", "max_drift"];

/// The endpoints of one document, by name.
pub(super) type Endpoints = HashMap<String, Arc<Endpoint>>;

impl Compiler<'_> {
    /// `verifiers: {name: {url, model, timeout, max_response_bytes, api_key_env}}`.
    pub(super) fn verifiers_section(&mut self, node: &Node) -> Endpoints {
        let mut out = Endpoints::new();
        let Some(entries) = self.section_map(node, "verifiers") else {
            return out;
        };
        if entries.len() > MAX_VERIFIERS {
            self.problem(
                node.pos,
                format!(
                    "`verifiers` has {} endpoints; the limit is {MAX_VERIFIERS}",
                    entries.len()
                ),
            );
            return out;
        }
        for (name, key, v) in entries {
            if name == RULES || name == LOCAL_MODEL {
                self.problem(
                    key.pos,
                    format!("`verifiers`: `{name}` is the name of a built-in verifier"),
                )
                .set_hint("give the endpoint another name");
                continue;
            }
            if let Some(e) = self.endpoint(name, v) {
                out.insert(name.to_string(), Arc::new(e));
            }
        }
        out
    }

    fn endpoint(&mut self, name: &str, node: &Node) -> Option<Endpoint> {
        let before = self.problems.len();
        let what = format!("verifier `{name}`");
        let (fields, _) = self.fields(node, &what, ENDPOINT_FIELDS)?;
        let get = |f: &str| fields.iter().find(|(k, _, _)| *k == f).map(|(_, _, v)| *v);
        let mut url = None;
        if let Some(v) = get("url") {
            let text = self.string(v, "url")?;
            match parse_url(text) {
                Ok(parts) => url = Some((text, parts)),
                Err(e) => {
                    self.problem(v.pos, format!("`url`: {e}"));
                }
            }
        } else {
            self.problem(node.pos, format!("{what} needs a `url`"));
        }
        let model = match get("model") {
            Some(v) => self.string(v, "model").map(str::to_string),
            None => {
                self.problem(node.pos, format!("{what} needs a `model`"));
                None
            }
        };
        let timeout = match get("timeout") {
            Some(v) => self.duration(v, "timeout").and_then(|d| {
                if d > MAX_TIMEOUT {
                    self.problem(
                        v.pos,
                        format!("`timeout` is at most {}s", MAX_TIMEOUT.as_secs()),
                    );
                    None
                } else {
                    Some(d)
                }
            }),
            None => Some(DEFAULT_TIMEOUT),
        };
        let max_response_bytes = match get("max_response_bytes") {
            Some(v) => self
                .count(v, "max_response_bytes", 256, MAX_RESPONSE_BYTES as i64)
                .map(|n| n as usize),
            None => Some(DEFAULT_MAX_RESPONSE_BYTES),
        };
        let api_key_env = match get("api_key_env") {
            Some(v) => Some(Arc::from(self.string(v, "api_key_env")?)),
            None => None,
        };
        if self.problems.len() > before {
            return None;
        }
        let (text, (host, port, path)) = url?;
        Some(Endpoint {
            name: Arc::from(name),
            url: Arc::from(text),
            host,
            port,
            path,
            model: Arc::from(model?),
            timeout: timeout?,
            max_response_bytes: max_response_bytes?,
            api_key_env,
        })
    }

    /// A rule's `verify: {quorum, of, max_drift}`.
    pub(super) fn verify(&mut self, node: &Node, endpoints: &Endpoints) -> Option<Verify> {
        let before = self.problems.len();
        let (fields, _) = self.fields(node, "`verify`", VERIFY_FIELDS)?;
        let get = |f: &str| fields.iter().find(|(k, _, _)| *k == f).map(|(_, _, v)| *v);
        let Some(of_node) = get("of") else {
            self.problem(node.pos, "`verify` needs `of`, the verifiers to ask")
                .set_hint("for example `of: [rules, local_model, endpoint_a]`");
            return None;
        };
        let items = self.strings(of_node, "verify.of")?;
        if items.len() > MAX_VERIFIERS {
            self.problem(
                of_node.pos,
                format!("`verify.of` names more than {MAX_VERIFIERS} verifiers"),
            );
            return None;
        }
        let mut of = Vec::new();
        for (name, n) in items {
            let v = match name {
                RULES => Verifier::Rules,
                LOCAL_MODEL => Verifier::LocalModel,
                _ => match endpoints.get(name) {
                    Some(e) => Verifier::Endpoint(e.clone()),
                    None => {
                        let mut known: Vec<&str> = vec![RULES, LOCAL_MODEL];
                        known.extend(endpoints.keys().map(String::as_str));
                        let hint = did_you_mean(name, &known).map_or_else(
                            || {
                                "name `rules`, `local_model` or an endpoint of this file's `verifiers:`"
                                    .to_string()
                            },
                            |s| format!("did you mean `{s}`?"),
                        );
                        self.problem(n.pos, format!("`verify.of`: unknown verifier `{name}`"))
                            .set_hint(hint);
                        continue;
                    }
                },
            };
            if of.iter().any(|o: &Verifier| o.name() == v.name()) {
                self.problem(n.pos, format!("`verify.of` names `{name}` twice"));
                continue;
            }
            of.push(v);
        }
        let quorum = match get("quorum") {
            Some(q) => self.count(q, "verify.quorum", 1, of.len().max(1) as i64)? as usize,
            None => of.len(),
        };
        let max_drift_milli = match get("max_drift") {
            None => Some(DEFAULT_MAX_DRIFT_MILLI),
            Some(v) => self.max_drift(v, &of),
        };
        if self.problems.len() > before || of.is_empty() {
            return None;
        }
        Some(Verify {
            quorum,
            of,
            max_drift_milli: max_drift_milli?,
        })
    }

    /// `max_drift`: a number from 0 to 2 (goal drift's range), kept to 3 decimals like the
    /// drift itself; only with `local_model` in `of` (a setting nothing reads is a mistake).
    fn max_drift(&mut self, v: &Node, of: &[Verifier]) -> Option<u16> {
        let max = f64::from(MAX_DRIFT_MILLI) / 1000.0;
        let n = match v.value {
            Value::Float(f) => f,
            Value::Int(i) => i as f64,
            _ => f64::NAN,
        };
        if !(0.0..=max).contains(&n) {
            self.problem(
                v.pos,
                format!(
                    "`verify.max_drift` must be a number from 0 to {max} (goal drift: 0 on task, about 1 unrelated), found {}",
                    v.kind()
                ),
            )
            .set_hint("for example `max_drift: 0.7`");
            return None;
        }
        if !of.iter().any(|o| matches!(o, Verifier::LocalModel)) {
            self.problem(
                v.pos,
                "`verify.max_drift` is the local model's threshold, but `of` does not name `local_model`",
            );
            return None;
        }
        Some((n * 1000.0).round() as u16)
    }
}
