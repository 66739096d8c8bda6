//! What the intent-rate test and the `intent_rates` example share: a command's labels as the
//! policy engine reads them, and the lines of a command list.

use warden_core::Action;
use warden_policy::understand::understand;

/// The intent labels of `command`, run from a project directory.
pub fn labels(command: &str) -> Vec<&'static str> {
    let action = Action::new("shell.exec")
        .with_arg("command", command)
        .with_context("cwd", "/home/dev/project");
    understand(&action)
        .intents
        .iter()
        .map(|i| i.label)
        .collect()
}

/// The commands of a list: non-empty lines that are not `#` comments.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
}
