//! Loading cost of a large YAML policy: 1,000 and 20,000 rules, each with an id, an action
//! and a CEL condition. Loading used to be quadratic (every position was computed by scanning
//! from the file start, and duplicate keys and ids were found by linear scans).
//!
//! Run: `cargo bench -p warden-policy --bench load`

use divan::{Bencher, black_box};
use warden_policy::{PolicySet, Source};

fn main() {
    divan::main();
}

/// The same shape as `/tmp/rules20k.yaml` in `docs/policy.md`.
fn rules(n: usize) -> String {
    let mut text = String::from("name: big\nrules:\n");
    for i in 0..n {
        let effect = if i % 2 == 1 { "allow" } else { "deny" };
        text.push_str(&format!(
            "  - id: r{i}\n    action: act{i}\n    effect: {effect}\n    when: \"args.n > {i}\"\n"
        ));
    }
    text
}

#[divan::bench(args = [1_000, 20_000], sample_count = 5)]
fn load_yaml(bencher: Bencher, n: usize) {
    let text = rules(n);
    bencher.bench(|| {
        let set = PolicySet::compile(&[Source::new("big.yaml", black_box(&text))]);
        black_box(set.map(|s| s.rule_count()).ok())
    });
}
