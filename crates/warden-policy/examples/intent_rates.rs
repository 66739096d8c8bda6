//! Print how often each intent label fires on the benign set of everyday developer commands
//! (`tests/data/benign_commands.txt`) and how many of the attack set it catches
//! (`tests/data/attack_commands.txt`). `docs/policy.md` quotes this table; `tests/intents.rs`
//! holds the numbers.
//!
//! Run: `cargo run -p warden-policy --example intent_rates`

#![allow(clippy::print_stdout)]

use warden_policy::understand::intent::LABELS;

#[path = "../tests/support/intent_data.rs"]
mod intent_data;
use intent_data::{labels, lines};

fn main() {
    let benign = include_str!("../tests/data/benign_commands.txt");
    let attacks = include_str!("../tests/data/attack_commands.txt");
    let benign: Vec<(&str, Vec<&str>)> = lines(benign).map(|c| (c, labels(c))).collect();
    println!(
        "| label | benign commands labelled (of {}) | false-positive rate | attacks caught |",
        benign.len()
    );
    println!("|---|---|---|---|");
    for label in LABELS {
        let fired: Vec<&str> = benign
            .iter()
            .filter(|(_, l)| l.contains(label))
            .map(|(c, _)| *c)
            .collect();
        let mine: Vec<&str> = lines(attacks)
            .filter_map(|l| l.split_once('\t'))
            .filter(|(l, _)| l == label)
            .map(|(_, c)| c)
            .collect();
        let caught = mine.iter().filter(|c| labels(c).contains(label)).count();
        println!(
            "| `{label}` | {} | {:.1} % | {caught} / {} |",
            fired.len(),
            100.0 * fired.len() as f64 / benign.len() as f64,
            mine.len()
        );
        for c in fired {
            println!("|  | `{c}` | | |");
        }
    }
}
