//! The Cedar backend: `.cedar` policy files evaluated by `cedar-policy`.
//!
//! An action becomes a Cedar request: principal `Agent::"<agent>"` (`Agent::"anonymous"` when
//! the action names no agent), action `Action::"<action>"`, resource `Tool::"<tool>"`, else
//! `Resource::"<resource>"`, else `Resource::"none"`, and context
//! `{ args: <args>, context: <context> }`, plus `understood` (the parsed commands, paths, SQL
//! kinds and intent labels, see [`crate::understand::reading`]) when the file mentions
//! `understood` anywhere. `permit` allows, `forbid` denies, and a `permit`
//! annotated `@effect("require_approval")` asks for approval. Policy ids come from `@id("…")`
//! or are `policy0`, `policy1`… in file order; reasons from `@reason("…")`.
//!
//! Cedar skips a policy whose evaluation errors, so an erroring `forbid` would silently let a
//! request through. Warden does not: any evaluation error is an error, which denies.
//!
//! A schema `<stem>.cedarschema` and entities `<stem>.entities.json` next to the policy file
//! are picked up when present: the schema validates the policies at load (strict mode) and
//! the entity data; the entities are available to every decision. Both are reported as the
//! document's sources (present or absent), so a reloader notices when either changes.
//!
//! JSON values Cedar cannot represent (`null`, floats, integers outside i64) are passed as
//! strings holding their JSON text, never dropped: a `has` guard sees them, and comparing
//! them as numbers is a type error, which denies.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    AuthorizationError, Authorizer, Context, Decision as CedarDecision, Effect, Entities, EntityId,
    EntityTypeName, EntityUid, PolicyId, Request, RestrictedExpression, Schema, ValidationMode,
    Validator,
};
use miette::Diagnostic;
use serde_json::Value;
use warden_core::{Action, Match, Policy, PolicyError, Verdict};

use crate::backend::Backend;
use crate::diagnostic::{Position, Problem};
use crate::explain::{RuleTrace, Status};
use crate::limits::Limits;
use crate::source::{self, Source, Watched};

/// One Cedar policy, with what Warden needs to report it.
#[derive(Debug)]
struct Rule {
    id: Arc<str>,
    verdict: Verdict,
    reason: Arc<str>,
    /// The policy alone, for `explain` (Cedar reports only the deciding policies of a set).
    alone: cedar_policy::PolicySet,
}

/// Entity type names, parsed once.
#[derive(Debug)]
struct Types {
    agent: EntityTypeName,
    action: EntityTypeName,
    tool: EntityTypeName,
    resource: EntityTypeName,
}

/// A compiled Cedar policy document.
#[derive(Debug)]
pub struct CedarPolicy {
    name: Arc<str>,
    // Boxed so that `Document` variants stay similar in size.
    set: Box<cedar_policy::PolicySet>,
    entities: Box<Entities>,
    authorizer: Authorizer,
    types: Box<Types>,
    /// In file order.
    rules: Vec<Rule>,
    /// Policy id → index into `rules`.
    by_id: HashMap<Arc<str>, usize>,
    /// The policy file, then the schema and entities files (present or absent).
    sources: Vec<Watched>,
    /// The file mentions `understood`: each request carries the action's reading.
    reads: bool,
}

/// The file next to `path` with the same stem and another extension.
fn sibling(path: &Path, extension: &str) -> std::path::PathBuf {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("policy");
    path.with_file_name(format!("{stem}.{extension}"))
}

/// A position for the first label of a miette diagnostic, or the file start.
fn labelled(source: &Source, d: &dyn Diagnostic) -> Position {
    d.labels().and_then(|mut l| l.next()).map_or_else(
        || source.position_of(0, 0),
        |l| source.position_of(l.offset(), l.len()),
    )
}

/// The `@id` annotation's position, for problems about one policy.
fn annotation_position(source: &Source, key: &str, value: &str, last: bool) -> Position {
    let needle = format!("@{key}(\"{value}\")");
    let found = if last {
        source.text.rfind(&needle)
    } else {
        source.text.find(&needle)
    };
    match found {
        Some(at) => source.position_of(at, needle.len()),
        None => source.position_of(0, 0),
    }
}

/// A sibling file's text, if it exists; either way it is recorded as a source.
fn read_sibling(
    path: &Path,
    extension: &str,
    limits: &Limits,
    sources: &mut Vec<Watched>,
) -> Result<Option<Source>, Problem> {
    let file = sibling(path, extension);
    // `exists` follows links: a dangling `x.entities.json` link is absent, not an error…
    if !file.exists() {
        // …unless it is a link: then something was meant to be there.
        if file.symlink_metadata().is_ok() {
            sources.push(Watched::File(file.clone()));
            return Err(Problem::whole_file(
                &file,
                "cannot read file: it is a link to nothing",
            ));
        }
        sources.push(Watched::Absent(file));
        return Ok(None);
    }
    sources.push(Watched::File(file.clone()));
    source::read(&file, limits).map(Some)
}

impl CedarPolicy {
    /// Parse and check a `.cedar` source (and its schema and entities, when present).
    pub(crate) fn compile(source: &Source, limits: &Limits) -> Result<CedarPolicy, Vec<Problem>> {
        let name = source.stem();
        if let Some(at) = source::nesting_too_deep(&source.text, "//", limits.max_nesting_depth) {
            return Err(vec![source::too_deep(source, at, limits)]);
        }
        if let Some(at) = source::too_many_operators(
            &source.text,
            Some("//"),
            Some(b';'),
            limits.max_expression_operators,
        ) {
            return Err(vec![source::too_many_operators_problem(source, at, limits)]);
        }
        let parsed = cedar_policy::PolicySet::from_str(&source.text).map_err(|errs| {
            errs.iter()
                .map(|e| {
                    Problem::new(source, labelled(source, e), format!("Cedar: {e}"))
                        .with_hint_opt(e.help().map(|h| h.to_string()))
                })
                .collect::<Vec<_>>()
        })?;
        if parsed.templates().next().is_some() {
            return Err(vec![Problem::new(
                source,
                source.position_of(0, 0),
                "Cedar templates (`?principal`, `?resource`) are not supported; write concrete policies",
            )]);
        }
        let mut problems = Vec::new();
        let mut sources = vec![Watched::File(source.path.to_path_buf())];
        let count = parsed.policies().count();
        if count > limits.max_rules_per_document {
            return Err(vec![
                Problem::new(
                    source,
                    source.position_of(0, 0),
                    format!(
                        "the file has {count} Cedar policies; the limit is {}",
                        limits.max_rules_per_document
                    ),
                )
                .with_hint("split it into several files"),
            ]);
        }
        // `from_str` names policies `policy0`, `policy1`… in file order, but `policies()`
        // iterates in no particular order: sort by that number to keep file order.
        let mut policies: Vec<_> = parsed.policies().collect();
        policies.sort_by_key(|p| {
            AsRef::<str>::as_ref(p.id())
                .strip_prefix("policy")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(usize::MAX)
        });
        let mut set = cedar_policy::PolicySet::new();
        let mut rules = Vec::new();
        let mut by_id = HashMap::new();
        for policy in policies {
            let id: Arc<str> = Arc::from(
                policy
                    .annotation("id")
                    .unwrap_or(AsRef::<str>::as_ref(policy.id())),
            );
            let verdict = match (policy.effect(), policy.annotation("effect")) {
                (Effect::Permit, None | Some("allow")) => Verdict::Allow,
                (Effect::Permit, Some("require_approval")) => Verdict::RequireApproval,
                (Effect::Forbid, None | Some("deny")) => Verdict::Deny,
                (effect, Some(other)) => {
                    problems.push(
                        Problem::new(
                            source,
                            annotation_position(source, "effect", other, false),
                            format!("`@effect(\"{other}\")` cannot be used on a `{effect}` policy"),
                        )
                        .with_hint(
                            "use `@effect(\"require_approval\")` on a `permit`; `forbid` always denies",
                        ),
                    );
                    continue;
                }
            };
            if by_id.contains_key(&id) {
                problems.push(
                    Problem::new(
                        source,
                        annotation_position(source, "id", &id, true),
                        format!("two Cedar policies have the id `{id}`"),
                    )
                    .with_hint("give each policy a unique `@id(\"…\")`"),
                );
                continue;
            }
            let reason: Arc<str> = match policy.annotation("reason") {
                Some(r) => Arc::from(r),
                None => Arc::from(format!(
                    "{} by Cedar policy `{id}` of `{name}`",
                    if policy.effect() == Effect::Forbid {
                        "forbidden"
                    } else {
                        "permitted"
                    }
                )),
            };
            let renamed = policy.new_id(PolicyId::new(&*id));
            let mut alone = cedar_policy::PolicySet::new();
            // Ids were checked unique above, so neither `add` can fail on a duplicate.
            let added = match alone.add(renamed.clone()) {
                Ok(()) => set.add(renamed).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = added {
                problems.push(Problem::new(
                    source,
                    source.position_of(0, 0),
                    format!("Cedar: {e}"),
                ));
                continue;
            }
            by_id.insert(id.clone(), rules.len());
            rules.push(Rule {
                id,
                verdict,
                reason,
                alone,
            });
        }

        let schema = match read_sibling(&source.path, "cedarschema", limits, &mut sources) {
            Ok(Some(schema_source)) => match Schema::from_cedarschema_str(&schema_source.text) {
                Ok((schema, _warnings)) => Some(schema),
                Err(e) => {
                    problems.push(Problem::new(
                        &schema_source,
                        labelled(&schema_source, &e),
                        format!("Cedar schema: {e}"),
                    ));
                    None
                }
            },
            Ok(None) => None,
            Err(p) => {
                problems.push(p);
                None
            }
        };
        if let Some(schema) = &schema {
            let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
            for e in result.validation_errors() {
                problems.push(Problem::new(
                    source,
                    labelled(source, e),
                    format!("Cedar validation: {e}"),
                ));
            }
        }
        let entities = match read_sibling(&source.path, "entities.json", limits, &mut sources) {
            Ok(Some(es)) => match Entities::from_json_str(&es.text, schema.as_ref()) {
                Ok(e) => e,
                Err(e) => {
                    problems.push(Problem::new(
                        &es,
                        es.position_of(0, 0),
                        format!("Cedar entities: {e}"),
                    ));
                    Entities::empty()
                }
            },
            Ok(None) => Entities::empty(),
            Err(p) => {
                problems.push(p);
                Entities::empty()
            }
        };
        let types = match (
            EntityTypeName::from_str("Agent"),
            EntityTypeName::from_str("Action"),
            EntityTypeName::from_str("Tool"),
            EntityTypeName::from_str("Resource"),
        ) {
            (Ok(agent), Ok(action), Ok(tool), Ok(resource)) => Types {
                agent,
                action,
                tool,
                resource,
            },
            _ => {
                problems.push(Problem::new(
                    source,
                    source.position_of(0, 0),
                    "internal error: Cedar rejected Warden's entity type names",
                ));
                return Err(problems);
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(CedarPolicy {
            name,
            set: Box::new(set),
            entities: Box::new(entities),
            authorizer: Authorizer::new(),
            types: Box::new(types),
            rules,
            by_id,
            sources,
            reads: crate::understand::mentions_reading(&source.text),
        })
    }

    /// The Cedar request for an action.
    fn request(&self, action: &Action) -> Result<Request, PolicyError> {
        let uid = |ty: &EntityTypeName, id: &str| {
            EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
        };
        let principal = uid(
            &self.types.agent,
            action.agent.as_deref().unwrap_or("anonymous"),
        );
        let verb = uid(&self.types.action, &action.action);
        let resource = match (&action.tool, &action.resource) {
            (Some(tool), _) => uid(&self.types.tool, tool),
            (None, Some(r)) => uid(&self.types.resource, r),
            (None, None) => uid(&self.types.resource, "none"),
        };
        let empty = || RestrictedExpression::new_record(std::iter::empty()).ok();
        let reading = if self.reads {
            let r = crate::understand::reading(action).map_err(|why| {
                PolicyError::new(
                    &*self.name,
                    "understood",
                    format!("the action could not be read: {why}"),
                )
            })?;
            Some(cedar_value(&r))
        } else {
            None
        };
        let pairs = [
            ("args", cedar_value(&action.args).or_else(empty)),
            ("context", cedar_value(&action.context).or_else(empty)),
            (crate::understand::READING_KEY, reading.flatten()),
        ];
        let context = Context::from_pairs(
            pairs
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_string(), v))),
        )
        .map_err(|e| PolicyError::new(&*self.name, "context", format!("Cedar context: {e}")))?;
        Request::new(principal, verb, resource, context, None)
            .map_err(|e| PolicyError::new(&*self.name, "request", format!("Cedar request: {e}")))
    }
}

impl Backend for CedarPolicy {
    fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn rule_count(&self) -> usize {
        self.rules.len()
    }

    fn sources(&self) -> &[Watched] {
        &self.sources
    }

    /// Every policy's verdict on `action`.
    fn trace(&self, action: &Action) -> Vec<RuleTrace> {
        let request = self.request(action);
        self.rules
            .iter()
            .map(|rule| {
                let (status, detail) = match &request {
                    Err(e) => (Status::Error, e.message().to_string()),
                    Ok(request) => {
                        let r = self
                            .authorizer
                            .is_authorized(request, &rule.alone, &self.entities);
                        if let Some(e) = r.diagnostics().errors().next() {
                            (Status::Error, e.to_string())
                        } else if r.diagnostics().reason().next().is_some() {
                            (Status::Matched, rule.reason.to_string())
                        } else {
                            (
                                Status::NotMatched,
                                "scope or conditions do not hold".to_string(),
                            )
                        }
                    }
                };
                RuleTrace {
                    policy: self.name.clone(),
                    rule: rule.id.clone(),
                    verdict: rule.verdict,
                    status,
                    detail,
                    decided: false,
                }
            })
            .collect()
    }
}

impl Policy for CedarPolicy {
    fn evaluate(&self, action: &Action) -> Result<Option<Match>, PolicyError> {
        let request = self.request(action)?;
        let response = self
            .authorizer
            .is_authorized(&request, &self.set, &self.entities);
        // INVARIANT: Cedar drops erroring policies from the decision; an erroring `forbid`
        // must not turn into an allow, so any error denies.
        if let Some(error) = response.diagnostics().errors().next() {
            // Irrefutable on purpose: a new kind of Cedar error must fail to compile here
            // rather than be skipped.
            let AuthorizationError::PolicyEvaluationError(e) = error;
            let id: &str = e.policy_id().as_ref();
            return Err(PolicyError::new(
                &*self.name,
                id,
                format!("Cedar could not evaluate policy `{id}`: {}", e.inner()),
            ));
        }
        if response.decision() == CedarDecision::Deny
            && response.diagnostics().reason().next().is_none()
        {
            return Ok(None);
        }
        // The strongest determining policy, first in file order among equals.
        let best = response
            .diagnostics()
            .reason()
            .filter_map(|id| self.by_id.get(AsRef::<str>::as_ref(id)).copied())
            .min_by_key(|&i| (std::cmp::Reverse(self.rules[i].verdict), i));
        Ok(best.map(|i| {
            let rule = &self.rules[i];
            Match {
                verdict: rule.verdict,
                policy: self.name.clone(),
                rule: rule.id.clone(),
                reason: rule.reason.clone(),
                obligations: Arc::from([]),
            }
        }))
    }
}

/// A JSON value as a Cedar value, built directly (no JSON round trip, and no reading of
/// Cedar's `__entity`/`__extn` escapes: agent-supplied data stays plain data). Cedar has no
/// null and no floats: `null`, floats and integers outside i64 become strings holding their
/// JSON text (`"null"`, `"5000.5"`, `"1e19"` as serde_json prints it). Nothing is dropped, so
/// `has` is true for them and using them as numbers is a type error, which denies.
fn cedar_value(value: &Value) -> Option<RestrictedExpression> {
    match value {
        Value::Null => Some(RestrictedExpression::new_string("null".to_string())),
        Value::Bool(b) => Some(RestrictedExpression::new_bool(*b)),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => RestrictedExpression::new_long(i),
            None => RestrictedExpression::new_string(n.to_string()),
        }),
        Value::String(s) => Some(RestrictedExpression::new_string(s.clone())),
        Value::Array(items) => items
            .iter()
            .map(cedar_value)
            .collect::<Option<Vec<_>>>()
            .map(RestrictedExpression::new_set),
        // Keys of a JSON object are unique, so `new_record` cannot fail on duplicates; if it
        // failed anyway, or a member had no form, the whole value is absent, and reading it
        // is an error, which fails closed.
        Value::Object(map) => RestrictedExpression::new_record(
            map.iter()
                .map(|(k, v)| cedar_value(v).map(|r| (k.clone(), r)))
                .collect::<Option<Vec<_>>>()?,
        )
        .ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<CedarPolicy, Vec<Problem>> {
        CedarPolicy::compile(
            &Source::new("/nonexistent/p.cedar", text),
            &Limits::default(),
        )
    }

    #[test]
    fn ids_effects_and_reasons() {
        let p = load(
            r#"
            @id("gh") permit(principal, action == Action::"http_request", resource);
            @effect("require_approval") @reason("ask first")
            permit(principal, action == Action::"deploy", resource);
            forbid(principal == Agent::"mallory", action, resource);
            "#,
        )
        .unwrap();
        let m = p.evaluate(&Action::new("http_request")).unwrap().unwrap();
        assert_eq!((m.verdict, &*m.rule), (Verdict::Allow, "gh"));
        let m = p.evaluate(&Action::new("deploy")).unwrap().unwrap();
        assert_eq!(
            (m.verdict, &*m.rule, &*m.reason),
            (Verdict::RequireApproval, "policy1", "ask first")
        );
        let m = p
            .evaluate(&Action::new("deploy").with_agent("mallory"))
            .unwrap()
            .unwrap();
        assert_eq!((m.verdict, &*m.rule), (Verdict::Deny, "policy2"));
        assert!(p.evaluate(&Action::new("other")).unwrap().is_none());
    }

    #[test]
    fn erroring_forbid_is_an_error() {
        let p = load(
            r#"permit(principal, action, resource);
            @id("no-big") forbid(principal, action, resource) when { context.args.n > 5 };"#,
        )
        .unwrap();
        let e = p.evaluate(&Action::new("x")).unwrap_err();
        assert_eq!(e.rule(), "no-big");
        assert!(
            p.evaluate(&Action::new("x").with_arg("n", 1))
                .unwrap()
                .is_some()
        );
        // Nulls and floats are strings to Cedar: comparing them as numbers errors.
        let e = p
            .evaluate(&Action::new("x").with_arg("n", Value::Null))
            .unwrap_err();
        assert_eq!(e.rule(), "no-big");
        assert!(p.evaluate(&Action::new("x").with_arg("n", 1.5)).is_err());
    }

    #[test]
    fn parse_errors_point_into_the_file() {
        let e =
            load("permit(principal, action, resource);\n\nforbid(principal, action resource);\n")
                .unwrap_err();
        assert_eq!(e[0].position().line, 3, "{}", e[0]);
        let e = load("@effect(\"maybe\") permit(principal, action, resource);").unwrap_err();
        assert!(e[0].message().contains("maybe"), "{}", e[0]);
        let e = load("@id(\"a\") permit(principal, action, resource);\n@id(\"a\") forbid(principal, action, resource);")
            .unwrap_err();
        assert_eq!(e[0].position().line, 2, "{}", e[0]);
    }

    #[test]
    fn agent_data_is_never_read_as_an_entity() {
        let p = load(
            r#"permit(principal, action, resource) when { context.args.x == Agent::"admin" };"#,
        )
        .unwrap();
        let smuggled = serde_json::json!({"__entity": {"type": "Agent", "id": "admin"}});
        let a = Action::new("x").with_arg("x", smuggled);
        assert!(p.evaluate(&a).unwrap().is_none());
    }
}
