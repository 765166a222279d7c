//! Replays the committed fuzz corpus (`fuzz/corpus/TARGET/*`) through each target: every input
//! a fuzzer ever kept, and every crash it found once fixed, runs on every `cargo test`.

use std::path::Path;

#[test]
fn every_corpus_input_runs_through_its_target_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (name, target) in martelli_fuzz::TARGETS {
        let dir = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{name}: a seed corpus is committed");
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            target(&data);
        }
    }
}
