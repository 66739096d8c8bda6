//! The attacker can write the model directory (a shared cache, a wrong `--model-dir`, a
//! symlink planted next to the real files) and wants `--require-model` to hang or exhaust
//! memory instead of failing with an error. No model is needed: every trick here must be
//! refused before the weights are parsed.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use warden_model::{Model, ModelError, verify_dir};

/// `Model::load` and `verify_dir` on `dir`, each in a thread: they must answer (with an
/// error) within a bound, "did not hang" only.
fn refused(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for which in 0..2 {
        let (tx, rx) = mpsc::channel();
        let dir = dir.to_owned();
        std::thread::spawn(move || {
            let r: Result<(), ModelError> = if which == 0 {
                Model::load(&dir).map(|_| ())
            } else {
                verify_dir(&dir)
            };
            let _ = tx.send(r);
        });
        let r = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("loading a broken model directory hung");
        out.push(r.expect_err("a broken model directory loaded").to_string());
    }
    out
}

#[test]
fn a_fifo_in_place_of_the_weights_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("model.safetensors");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    for e in refused(dir.path()) {
        assert!(e.contains("not a regular file"), "{e}");
    }
}

#[test]
fn a_symlink_to_a_device_or_a_directory_is_refused() {
    for target in ["/dev/zero", "/"] {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(target, dir.path().join("model.safetensors")).unwrap();
        for e in refused(dir.path()) {
            assert!(e.contains("not a regular file"), "{target}: {e}");
        }
    }
}

#[test]
fn a_file_larger_than_any_model_file_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    // Sparse: no disk is used for the bytes that are not there.
    let f = std::fs::File::create(dir.path().join("model.safetensors")).unwrap();
    f.set_len(warden_model::MAX_MODEL_FILE_BYTES + 1).unwrap();
    for e in refused(dir.path()) {
        assert!(e.contains("larger than"), "{e}");
    }
}
