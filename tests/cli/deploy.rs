//! The recipes in deploy/ cannot run here (no container runtime, no cluster), so they are
//! parsed and checked against the real CLI: every flag they pass exists, the address workers
//! join is the one the coordinator listens on and the Service or compose service serves, and
//! the token's environment name is the one martelli reads. A recipe cannot rot silently.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use serde_yaml::Value;

use crate::{martelli, text};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_documents(relative: &str) -> Vec<Value> {
    let source = std::fs::read_to_string(root().join(relative)).unwrap();
    serde_yaml::Deserializer::from_str(&source)
        .map(|document| Value::deserialize(document).unwrap_or_else(|e| panic!("{relative}: {e}")))
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("a list of arguments, got {value:?}"))
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => serde_yaml::to_string(other).unwrap().trim().to_string(),
        })
        .collect()
}

/// Checks that every `--flag` of `args` (a martelli command line, subcommand first) is one
/// that `martelli <subcommand> --help` documents.
fn flags_exist(args: &[String], recipe: &str) {
    let subcommand = &args[0];
    let o = martelli(&[subcommand, "--help"]);
    assert!(
        o.status.success(),
        "{recipe}: `martelli {subcommand}` is not a command"
    );
    let help = text(&o.stdout);
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        let flag = flag.split('=').next().unwrap();
        assert!(
            help.contains(flag),
            "{recipe}: `martelli {subcommand}` has no {flag}"
        );
    }
}

/// The value after `flag` in `args`.
fn value_of<'a>(args: &'a [String], flag: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} missing in {args:?}"));
    &args[at + 1]
}

/// The port of a `host:port`.
fn port(address: &str) -> u16 {
    address.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// The environment variable martelli reads the token from, as its help says.
fn token_variable() -> &'static str {
    let help = text(&martelli(&["worker", "--help"]).stdout);
    assert!(help.contains("MARTELLI_TOKEN"), "{help}");
    "MARTELLI_TOKEN"
}

#[test]
fn the_compose_recipe_agrees_with_the_cli() {
    let compose = &yaml_documents("deploy/compose/compose.yaml")[0];
    let services = &compose["services"];
    let coordinator = strings(&services["coordinator"]["command"]);
    let worker = strings(&services["worker"]["command"]);
    flags_exist(&coordinator, "compose coordinator");
    flags_exist(&worker, "compose worker");
    assert_eq!(coordinator[0], "run");
    assert_eq!(worker[0], "worker");
    let join = value_of(&worker, "--join");
    let (host, _) = join.rsplit_once(':').unwrap();
    assert!(
        services.get(host).is_some(),
        "workers join {host}, which is no compose service"
    );
    assert_eq!(port(join), port(value_of(&coordinator, "--listen")));
    let config = coordinator[1]
        .strip_prefix("/configs/")
        .expect("a config the image carries");
    assert!(root().join("configs").join(config).exists(), "{config}");
    for service in ["coordinator", "worker"] {
        let env = &services[service]["environment"];
        assert!(env.get(token_variable()).is_some(), "{service} gets the token");
    }
    assert_eq!(
        services["coordinator"]["build"]["dockerfile"].as_str(),
        Some("deploy/docker/Dockerfile")
    );
}

#[test]
fn the_kubernetes_recipe_agrees_with_the_cli_and_with_itself() {
    let mut documents = Vec::new();
    for file in yaml_documents("deploy/kubernetes/kustomization.yaml")[0]["resources"]
        .as_sequence()
        .unwrap()
    {
        documents.extend(yaml_documents(&format!(
            "deploy/kubernetes/{}",
            file.as_str().unwrap()
        )));
    }
    let of_kind = |kind: &str| -> Vec<&Value> { documents.iter().filter(|d| d["kind"] == kind).collect() };
    let (service, job, deployment, secret) = (
        of_kind("Service")[0],
        of_kind("Job")[0],
        of_kind("Deployment")[0],
        of_kind("Secret")[0],
    );
    let container = |workload: &Value| workload["spec"]["template"]["spec"]["containers"][0].clone();
    let (coordinator, worker) = (container(job), container(deployment));
    let coordinator_args = strings(&coordinator["args"]);
    let worker_args = strings(&worker["args"]);
    flags_exist(&coordinator_args, "kubernetes coordinator");
    flags_exist(&worker_args, "kubernetes worker");
    // Workers join the Service by name, on the port it serves, which reaches the coordinator.
    let join = value_of(&worker_args, "--join");
    let (host, join_port) = (join.rsplit_once(':').unwrap().0, port(join));
    assert_eq!(service["metadata"]["name"].as_str(), Some(host));
    let served = &service["spec"]["ports"][0];
    assert_eq!(served["port"].as_u64(), Some(u64::from(join_port)));
    let listen = port(value_of(&coordinator_args, "--listen"));
    assert_eq!(served["targetPort"].as_u64(), Some(u64::from(listen)));
    assert_eq!(
        coordinator["ports"][0]["containerPort"].as_u64(),
        Some(u64::from(listen))
    );
    let selector = &service["spec"]["selector"];
    let labels = &job["spec"]["template"]["metadata"]["labels"];
    for (key, value) in selector.as_mapping().unwrap() {
        assert_eq!(&labels[key], value, "the Service selects the coordinator's pod");
    }
    // As many workers as the coordinator waits for.
    assert_eq!(
        deployment["spec"]["replicas"].as_u64(),
        value_of(&coordinator_args, "--expect-workers")
            .parse::<u64>()
            .ok()
    );
    assert_eq!(
        port(value_of(&worker_args, "--listen")),
        worker["ports"][0]["containerPort"].as_u64().unwrap() as u16
    );
    // The token comes from the Secret, under the name martelli reads.
    let secret_name = secret["metadata"]["name"].as_str().unwrap();
    for c in [&coordinator, &worker] {
        let env = c["env"].as_sequence().unwrap();
        let token = env
            .iter()
            .find(|e| e["name"] == token_variable())
            .expect("the token is passed");
        let key = &token["valueFrom"]["secretKeyRef"];
        assert_eq!(key["name"].as_str(), Some(secret_name));
        assert!(secret["stringData"].get(key["key"].as_str().unwrap()).is_some());
    }
}

#[test]
fn the_dockerfile_and_the_slurm_script_agree_with_the_cli() {
    let dockerfile = std::fs::read_to_string(root().join("deploy/docker/Dockerfile")).unwrap();
    assert!(dockerfile.contains("ENTRYPOINT [\"martelli\"]"), "{dockerfile}");
    assert!(dockerfile.contains("cargo build --release --locked --bin martelli"));
    let exposed: BTreeSet<u16> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("EXPOSE "))
        .flat_map(|ports| ports.split_whitespace().map(|p| p.parse::<u16>().unwrap()))
        .collect();
    let compose = &yaml_documents("deploy/compose/compose.yaml")[0]["services"];
    for (service, flag) in [("coordinator", "--listen"), ("worker", "--listen")] {
        let args = strings(&compose[service]["command"]);
        let p = port(value_of(&args, flag));
        assert!(exposed.contains(&p), "the image exposes {service}'s port {p}");
    }
    let sbatch = std::fs::read_to_string(root().join("deploy/slurm/martelli.sbatch")).unwrap();
    let worker_line = sbatch
        .lines()
        .find(|l| l.contains("worker --threads"))
        .expect("the batch script starts workers");
    let worker: Vec<String> = worker_line
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '\'' || c == '"').to_string())
        .skip_while(|w| w != "worker")
        .collect();
    flags_exist(&worker, "slurm worker");
    let run_line = sbatch
        .lines()
        .find(|l| l.contains("\" run \""))
        .expect("the batch script runs the config");
    let run: Vec<String> = run_line
        .split_whitespace()
        .map(|w| w.trim_matches('"').to_string())
        .skip_while(|w| w != "run")
        .collect();
    flags_exist(&run, "slurm coordinator");
    assert!(
        sbatch.contains("SLURM_CPUS_ON_NODE"),
        "threads come from the allocation"
    );
    assert!(sbatch.contains("SLURM_JOB_NUM_NODES"), "one worker per node");
}
