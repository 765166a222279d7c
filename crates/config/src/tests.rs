//! Data-driven tests: config text in, typed config or located error out.

use std::path::Path;

use martelli_workload::{Kind, SizeDistribution};

use crate::{ConfigError, Overrides, Scaling, Tier, parse};

const GOOD: &str = r#"
tier = "multi"
[workload]
name = "demo"
seed = 7
tasks = 100
kind = "cpu"
task_cost = "1ms"
size_distribution = "lognormal"
spread = 0.8
serial_fraction = 0.1
payload_bytes = "1KiB"
[sweep]
cores = [4, 2, 2]
repeats = 5
"#;

fn parse_str(text: &str) -> Result<crate::Config, ConfigError> {
    parse(Path::new("t.toml"), text, &Overrides::default())
}

#[test]
fn a_good_config_becomes_typed_values() {
    let c = parse_str(GOOD).unwrap();
    assert_eq!(c.tier, Some(Tier::Multi));
    assert_eq!(c.sweep.cores, vec![1, 2, 4], "sorted, de-duplicated, 1 added");
    assert_eq!(
        (c.sweep.repeats, c.sweep.warmup, c.sweep.scaling),
        (5, 1, Scaling::Strong)
    );
    let s = &c.series[0];
    assert_eq!(s.label, "demo");
    assert_eq!(s.task_cost, Some(std::time::Duration::from_millis(1)));
    assert_eq!(s.workload.kind, Kind::Cpu);
    assert_eq!(s.workload.payload_bytes, 1024);
    assert_eq!(
        s.workload.distribution,
        SizeDistribution::LogNormal { sigma: 0.8 }
    );
    assert_eq!(c.output_dir, Path::new("output/t"));
}

#[test]
fn overrides_win_and_are_recorded() {
    let overrides = Overrides {
        tier: Some(Tier::Single),
        cores: Some(vec![3]),
        repeats: Some(1),
        out: Some("elsewhere".into()),
        ..Overrides::default()
    };
    let c = parse(Path::new("t.toml"), GOOD, &overrides).unwrap();
    assert_eq!(
        (c.tier, c.sweep.cores.clone(), c.sweep.repeats),
        (Some(Tier::Single), vec![1, 3], 1)
    );
    assert_eq!(c.output_dir, Path::new("elsewhere"));
    assert_eq!(c.document["tier"].as_str(), Some("single"));
    assert_eq!(c.document["sweep"]["repeats"].as_integer(), Some(1));
}

#[test]
fn a_list_of_waits_gives_each_task_its_own() {
    let c = parse_str("[workload]\ntasks = 3\nkind = \"io\"\nio_wait = [\"3s\", \"1s\", \"1s\"]\n").unwrap();
    let w = &c.series[0].workload;
    let waits: Vec<u64> = w.tasks().map(|t| t.io_wait_ns).collect();
    assert_eq!(waits, [3_000_000_000, 1_000_000_000, 1_000_000_000]);
}

#[test]
fn vary_gives_one_series_per_value() {
    let text = GOOD.replace("repeats = 5", "vary = { task_cost = [\"10us\", \"1ms\"] }");
    let c = parse_str(&text).unwrap();
    let labels: Vec<_> = c.series.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["task_cost=10us", "task_cost=1ms"]);
    let text = GOOD.replace("repeats = 5", "vary = { iterations = [10, 20] }");
    let c = parse_str(&text).unwrap();
    assert_eq!(c.series[1].workload.iterations, 20);
    assert_eq!(
        c.series[1].task_cost, None,
        "varying iterations replaces task_cost"
    );
    // Keys varied together: series i takes the i-th value of each, workload and executor.
    let text = GOOD.replace(
        "repeats = 5",
        "vary = { model = [\"threads\", \"processes\", \"processes\"], payload_bytes = [0, 0, \"1MiB\"] }",
    );
    let c = parse_str(&text).unwrap();
    let labels: Vec<_> = c.series.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "model=threads, payload_bytes=0",
            "model=processes, payload_bytes=0",
            "model=processes, payload_bytes=1MiB"
        ]
    );
    assert_eq!(c.series[0].workload, c.series[1].workload);
    assert_eq!(c.series[2].workload.payload_bytes, 1 << 20);
    assert_eq!(c.series[2].executor.model, crate::Model::Processes);
}

/// Each bad input, the line the error must point at (0: no line), and words it must contain.
const BAD: &[(&str, &str, usize, &str)] = &[
    (
        "unknown key",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 1\ncolour = 3\n",
        5,
        "unknown field `colour`",
    ),
    ("wrong type", "[workload]\ntasks = \"many\"\n", 2, "invalid type"),
    (
        "zero tasks",
        "[workload]\ntasks = 0\nkind = \"cpu\"\niterations = 1\n",
        2,
        "workload.tasks: must be between 1",
    ),
    (
        "zero cores",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 1\n[sweep]\ncores = [1, 0]\n",
        6,
        "sweep.cores[1]",
    ),
    (
        "negative core",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 1\n[sweep]\ncores = [-2]\n",
        6,
        "invalid value",
    ),
    (
        "negative serial fraction",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 1\nserial_fraction = -0.1\n",
        5,
        "at least 0 and below 1",
    ),
    (
        "serial fraction of one",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 1\nserial_fraction = 1.0\n",
        5,
        "below 1",
    ),
    (
        "bad duration",
        "[workload]\ntasks = 1\nkind = \"cpu\"\ntask_cost = \"5 parsecs\"\n",
        4,
        "unknown unit \"parsecs\"",
    ),
    (
        "duration without unit",
        "[workload]\ntasks = 1\nkind = \"io\"\nio_wait = \"5\"\n",
        4,
        "has no unit",
    ),
    (
        "unknown tier",
        "tier = \"quantum\"\n[workload]\ntasks = 1\n",
        1,
        "unknown variant `quantum`",
    ),
    (
        "unknown kind",
        "[workload]\ntasks = 1\nkind = \"gpu\"\n",
        3,
        "unknown variant `gpu`",
    ),
    (
        "missing kind",
        "[workload]\ntasks = 1\n",
        1,
        "workload.kind: missing",
    ),
    (
        "missing workload",
        "tier = \"single\"\n",
        0,
        "missing the [workload] section",
    ),
    ("empty file", "  \n", 0, "the file is empty"),
    (
        "both costs",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 1\ntask_cost = \"1ms\"\n",
        5,
        "not both",
    ),
    (
        "io with iterations",
        "[workload]\ntasks = 1\nkind = \"io\"\nio_wait = \"1ms\"\niterations = 5\n",
        5,
        "computes nothing",
    ),
    (
        "cpu with io_wait",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 5\nio_wait = \"1ms\"\n",
        5,
        "does not wait",
    ),
    (
        "spread without distribution",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 5\nspread = 0.5\n",
        5,
        "only meaningful",
    ),
    (
        "truncated file",
        "[workload]\ntasks = 1\nkind = \"cp",
        3,
        "invalid",
    ),
    (
        "two varied keys of different lengths",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 5\n[sweep]\nvary = { tasks = [1, 2], seed = [2] }\n",
        6,
        "sweep.vary.tasks: lists 2 values where `seed` lists 1",
    ),
    (
        "a zero wait in a list",
        "[workload]\ntasks = 3\nkind = \"io\"\nio_wait = [\"3s\", \"0s\"]\n",
        4,
        "workload.io_wait[1]: must be above 0",
    ),
    (
        "not a duration in a list",
        "[workload]\ntasks = 3\nkind = \"io\"\nio_wait = [\"3s\", \"soon\"]\n",
        4,
        ":4:18: unknown unit \"soon\"",
    ),
    (
        "a list of waits with a distribution",
        "[workload]\ntasks = 3\nkind = \"io\"\nio_wait = [\"3s\"]\nsize_distribution = \"uniform\"\n",
        5,
        "a list of waits already sets each task's size",
    ),
    (
        "an empty list of waits",
        "[workload]\ntasks = 3\nkind = \"io\"\nio_wait = []\n",
        4,
        "a list of waits needs 1 to 1024 entries",
    ),
    (
        "cost varied twice",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 5\n[sweep]\nvary = { iterations = [1], task_cost = [\"1ms\"] }\n",
        6,
        "not both",
    ),
    (
        "bad value in the second varied key",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 5\n[sweep]\nvary = { tasks = [1, 2], seed = [2, -3] }\n",
        6,
        "sweep.vary.seed[1]",
    ),
    (
        "the same series twice",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 5\n[sweep]\nvary = { tasks = [1, 1], seed = [2, 2] }\n",
        6,
        "the series seed=2, tasks=1 is listed twice",
    ),
    (
        "bad varied value",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 5\n[sweep]\nvary = { task_cost = [\"1ms\", \"soon\"] }\n",
        6,
        "sweep.vary.task_cost[1]",
    ),
    (
        "varied name",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 5\n[sweep]\nvary = { name = [\"a\"] }\n",
        6,
        "cannot be varied",
    ),
    (
        "zero repeats",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 5\n[sweep]\nrepeats = 0\n",
        6,
        "sweep.repeats",
    ),
    (
        "access for a cpu workload",
        "[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 5\naccess = \"stream\"\n",
        5,
        "workload.access",
    ),
    (
        "unknown feeding policy",
        "tier = \"distributed\"\n[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 5\n\
         [distributed]\nspawn_local = 1\npolicy = \"push\"\n",
        8,
        "\"push\" is not a policy: expected one of \"guided\", \"credit\", \"pull\"",
    ),
];

#[test]
fn the_feeding_policy_is_guided_unless_the_config_names_another() {
    let base = "tier = \"distributed\"\n[workload]\ntasks = 1\nkind = \"cpu\"\niterations = 5\n\
                [distributed]\nspawn_local = 1\n";
    let policy = |extra: &str| {
        parse_str(&format!("{base}{extra}"))
            .unwrap()
            .distributed
            .unwrap()
            .policy
    };
    assert_eq!(policy(""), martelli_schedule::Policy::Guided);
    assert_eq!(policy("policy = \"pull\"\n"), martelli_schedule::Policy::Pull);
    assert_eq!(policy("policy = \"credit\"\n"), martelli_schedule::Policy::Credit);
}

#[test]
fn bad_configs_name_the_line_and_the_problem() {
    for &(case, text, line, words) in BAD {
        let error = parse_str(text).expect_err(case);
        let message = error.to_string();
        assert!(message.starts_with("t.toml"), "{case}: {message}");
        assert!(message.contains(words), "{case}: {message:?} lacks {words:?}");
        let ConfigError::Invalid(e) = &error else {
            panic!("{case}: {message}")
        };
        assert_eq!(e.position.map_or(0, |p| p.0), line, "{case}: {message}");
    }
}

#[test]
fn an_unreadable_file_names_the_path() {
    let error = crate::load(Path::new("/no/such/config.toml"), &Overrides::default()).unwrap_err();
    assert!(error.to_string().contains("/no/such/config.toml"), "{error}");
}
