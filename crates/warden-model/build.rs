//! Bundle the trained heads when they are in the source tree.
//!
//! The heads (`heads/tools.json`, `heads/texts.json`) are produced by the training pipeline in
//! `bench/detect/` and committed. A tree without them still builds: the classifier then reports
//! that no trained heads are built in, and detection runs on the rules alone (and says so),
//! instead of shipping a stand-in head that would look trained.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(warden_heads)");
    println!("cargo::rustc-check-cfg=cfg(warden_ngram_texts)");
    println!("cargo::rerun-if-changed=heads");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("heads");
    if dir.join("tools.json").is_file() && dir.join("texts.json").is_file() {
        println!("cargo::rustc-cfg=warden_heads");
    }
    if dir.join("ngram-texts.json").is_file() {
        println!("cargo::rustc-cfg=warden_ngram_texts");
    }
}
