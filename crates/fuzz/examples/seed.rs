//! Writes the seed corpus into `fuzz/corpus/TARGET/`: the shipped configs, well-formed wire
//! messages of each kind and martelli-style CSV files. `cargo run -p martelli-fuzz --example
//! seed` (scripts/fuzz.sh runs it when a corpus folder is missing).

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    for (target, _) in martelli_fuzz::TARGETS {
        std::fs::create_dir_all(root.join(target))?;
    }
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    for dir in [configs.clone(), configs.join("lessons"), configs.join("validate")] {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let name = path.file_name().expect("a file").to_string_lossy().into_owned();
                std::fs::copy(&path, root.join("config").join(name))?;
            }
        }
    }
    for (target, name, bytes) in martelli_distributed::fuzzing::seeds() {
        std::fs::write(root.join(target).join(name), bytes)?;
    }
    let csv = [
        ("plain", "cores,throughput\n1,100\n2,190\n4,340\n8,560\n"),
        ("wall", "cores,wall_s\n1,2.0\n2,1.1\n4,0.7\n"),
        (
            "results",
            "series,tier,cores,tasks_per_s,predicted\n\"a, b\",single,1,10,false\n\"a, b\",multi,2,19,false\n\"a, b\",multi,4,30,false\nx (predicted),multi,8,50,true\n",
        ),
    ];
    for (name, text) in csv {
        std::fs::write(root.join("fit_csv").join(name), text)?;
    }
    Ok(())
}
