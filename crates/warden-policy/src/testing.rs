//! Policy test files: cases with expected verdicts, for users' own CI (`warden policy test`).
//!
//! ```yaml
//! policies: [brief.yaml]          # relative to this file; a string or a list
//! cases:
//!   - name: code execution is denied
//!     action: { action: execute_code }
//!     expect: deny                  # allow | deny | require_approval
//!     rule: rules[0]                # optional: the deciding rule must be this one
//! ```

use std::path::{Path, PathBuf};

use warden_core::{Action, Decision, Verdict};

use crate::diagnostic::{LoadError, Problem};
use crate::limits::Limits;
use crate::set::PolicySet;
use crate::source::{Source, read};
use crate::yaml::{self, Node, Value, entries, strings};

/// One case of a test file.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case's name (or `cases[i]`).
    pub name: String,
    /// Line of the case in the test file.
    pub line: usize,
    /// The action to judge.
    pub action: Action,
    /// The expected verdict.
    pub expect: Verdict,
    /// The expected deciding rule, if the case names one.
    pub rule: Option<String>,
}

/// A parsed test file.
#[derive(Debug, Clone)]
pub struct TestFile {
    /// Where the file is.
    pub path: PathBuf,
    /// Policy paths, resolved against the file's directory.
    pub policies: Vec<PathBuf>,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// How one case went.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case.
    pub case: Case,
    /// What the policy decided.
    pub decision: Decision,
}

impl CaseResult {
    /// True when the verdict (and rule, if named) are as expected.
    pub fn passed(&self) -> bool {
        self.decision.verdict == self.case.expect
            && self
                .case
                .rule
                .as_deref()
                .is_none_or(|r| self.decision.rule.as_deref() == Some(r))
    }
}

const FILE_FIELDS: &[&str] = &["policies", "cases"];
const CASE_FIELDS: &[&str] = &["name", "action", "expect", "rule"];

impl TestFile {
    /// Read and check a test file; every problem is reported with its position.
    pub fn load(path: &Path) -> Result<TestFile, LoadError> {
        let limits = Limits::default();
        let source = read(path, &limits).map_err(|p| LoadError::new(vec![p]))?;
        let root = match yaml::parse(&source, &limits) {
            Ok(Some(root)) => root,
            Ok(None) => return Err(LoadError::file(path, "the test file is empty")),
            Err(p) => return Err(LoadError::new(vec![p])),
        };
        let mut problems = Vec::new();
        let base = path.parent().unwrap_or(Path::new("."));
        let mut policies = Vec::new();
        let mut cases = Vec::new();
        for (key, k, v) in entries(&source, &root, "a test file", FILE_FIELDS, &mut problems) {
            match key {
                "policies" => match strings(v) {
                    Some(list) => policies = list.into_iter().map(|p| base.join(p)).collect(),
                    None => problems.push(Problem::new(
                        &source,
                        v.pos,
                        "`policies` must be a path or a list of paths",
                    )),
                },
                "cases" => match &v.value {
                    Value::Seq(items) => {
                        for (i, item) in items.iter().enumerate() {
                            if let Some(c) = case(&source, item, i, &mut problems) {
                                cases.push(c);
                            }
                        }
                    }
                    _ => problems.push(Problem::new(&source, v.pos, "`cases` must be a list")),
                },
                _ => problems.push(Problem::new(&source, k.pos, format!("unexpected `{key}`"))),
            }
        }
        if cases.is_empty() && problems.is_empty() {
            problems.push(Problem::new(
                &source,
                root.pos,
                "the test file has no `cases`",
            ));
        }
        if problems.is_empty() {
            Ok(TestFile {
                path: path.to_path_buf(),
                policies,
                cases,
            })
        } else {
            Err(LoadError::new(problems))
        }
    }

    /// Run every case against `set`.
    pub fn run(&self, set: &PolicySet) -> Vec<CaseResult> {
        self.cases
            .iter()
            .map(|case| CaseResult {
                case: case.clone(),
                decision: set.decide(&case.action),
            })
            .collect()
    }
}

fn case(source: &Source, node: &Node, index: usize, problems: &mut Vec<Problem>) -> Option<Case> {
    let before = problems.len();
    let mut name = format!("cases[{index}]");
    let mut action = None;
    let mut expect = None;
    let mut rule = None;
    for (key, _, v) in entries(source, node, "a test case", CASE_FIELDS, problems) {
        match key {
            "name" => match v.as_str() {
                Some(s) => name = s.to_string(),
                None => problems.push(Problem::new(source, v.pos, "`name` must be a string")),
            },
            "rule" => match v.as_str() {
                Some(s) => rule = Some(s.to_string()),
                None => problems.push(Problem::new(source, v.pos, "`rule` must be a string")),
            },
            "expect" => match v.as_str().map(str::parse::<Verdict>) {
                Some(Ok(verdict)) => expect = Some(verdict),
                Some(Err(e)) => problems.push(Problem::new(source, v.pos, e)),
                None => problems.push(Problem::new(
                    source,
                    v.pos,
                    "`expect` must be allow, deny or require_approval",
                )),
            },
            "action" => {
                let json = v.to_json();
                match serde_json::from_value::<Action>(json) {
                    Ok(a) => match a.validate() {
                        Ok(()) => action = Some(a),
                        Err(e) => problems.push(Problem::new(source, v.pos, e.to_string())),
                    },
                    Err(e) => {
                        problems.push(Problem::new(source, v.pos, format!("invalid action: {e}")))
                    }
                }
            }
            _ => unreachable!("entries() filters unknown keys"),
        }
    }
    if action.is_none() && problems.len() == before {
        problems.push(Problem::new(source, node.pos, "a case needs an `action`"));
    }
    if expect.is_none() && problems.len() == before {
        problems.push(Problem::new(source, node.pos, "a case needs `expect`"));
    }
    Some(Case {
        name,
        line: node.pos.line,
        action: action?,
        expect: expect?,
        rule,
    })
    .filter(|_| problems.len() == before)
}
