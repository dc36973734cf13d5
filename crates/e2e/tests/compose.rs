//! docker-compose.yml cannot be run here (no Docker engine), so this checks that it says the
//! same as the scripts and the code: the same topics and partitions, the same processes and
//! flags that exist, and a detector that can be scaled.

use std::collections::BTreeMap;

use yaml_rust2::{Yaml, YamlLoader};

fn compose() -> Yaml {
    let text = std::fs::read_to_string(testkit::repo_root().join("docker-compose.yml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

/// `NAME:PARTITIONS` specs as written in scripts/topics.sh's `TOPICS=(…)` line.
fn script_topics() -> BTreeMap<String, i32> {
    let text = std::fs::read_to_string(testkit::repo_root().join("scripts/topics.sh")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("TOPICS=("))
        .expect("TOPICS=( in topics.sh");
    parse_specs(line.trim_start_matches("TOPICS=(").trim_end_matches(')'))
}

fn parse_specs(text: &str) -> BTreeMap<String, i32> {
    text.split_whitespace()
        .filter_map(|spec| spec.split_once(':'))
        .map(|(name, partitions)| (name.to_string(), partitions.parse().unwrap()))
        .collect()
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let service = &compose["services"][name];
    assert!(
        !service.is_badvalue(),
        "docker-compose.yml has no service {name}"
    );
    service
}

/// A service's field, also through a `<<: *anchor` merge (which the parser leaves as a key).
fn field<'a>(service: &'a Yaml, name: &str) -> &'a Yaml {
    let own = &service[name];
    if own.is_badvalue() {
        &service["<<"][name]
    } else {
        own
    }
}

fn command(service: &Yaml) -> Vec<String> {
    service["command"]
        .as_vec()
        .expect("command is a list")
        .iter()
        .map(|part| part.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn topics_and_partitions_match_the_scripts_and_the_schema() {
    let compose = compose();
    let init = command(service(&compose, "topics")).join("\n");
    let specs_line = init
        .lines()
        .find(|l| l.trim_start().starts_with("for spec in"))
        .expect("a `for spec in …` loop in the topics service");
    let specs = specs_line
        .trim()
        .trim_start_matches("for spec in")
        .trim_end_matches("; do");
    let from_compose = parse_specs(specs);
    let from_script = script_topics();
    assert_eq!(
        from_compose, from_script,
        "docker-compose.yml and scripts/topics.sh disagree"
    );
    let expected: BTreeMap<String, i32> = [
        (
            schema::topics::TRANSACTIONS.to_string(),
            schema::topics::TRANSACTION_PARTITIONS,
        ),
        (schema::topics::ANOMALIES.to_string(), 1),
        (schema::topics::DEAD_LETTERS.to_string(), 1),
    ]
    .into();
    assert_eq!(
        from_script, expected,
        "the scripts disagree with schema::topics"
    );
}

#[test]
fn processes_run_with_flags_they_accept_and_the_detector_scales() {
    let compose = compose();
    let demo = std::fs::read_to_string(testkit::repo_root().join("scripts/demo.sh")).unwrap();
    for name in ["trainer", "detector", "generator", "inspector"] {
        let service = service(&compose, name);
        let command = command(service);
        assert_eq!(command[0], name, "service {name} runs another program");
        assert_eq!(
            field(service, "environment")["KAFKA_BOOTSTRAP"].as_str(),
            Some("kafka:9092")
        );
        assert!(
            field(service, "build").as_str().is_some(),
            "{name} is not built from the repo"
        );
        // Every flag compose passes is one the binary (or its subcommand) accepts.
        let mut help_args: Vec<&str> = command[1..]
            .iter()
            .take_while(|arg| !arg.starts_with('-'))
            .map(String::as_str)
            .collect();
        help_args.push("--help");
        let help = testkit::run_ok(
            std::process::Command::new(testkit::workspace_bin(name)).args(&help_args),
        );
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in command.iter().filter(|arg| arg.starts_with("--")) {
            assert!(
                help.contains(flag.as_str()),
                "{name} does not accept {flag}:\n{help}"
            );
        }
        // The demo runs the same processes.
        assert!(
            demo.contains(&format!("scripts/{name}.sh")),
            "demo.sh does not run {name}"
        );
    }
    let detector = service(&compose, "detector");
    assert!(
        field(detector, "container_name").is_badvalue(),
        "a container_name prevents --scale"
    );
    assert!(
        field(detector, "ports").is_badvalue(),
        "fixed ports prevent --scale"
    );
    let kafka_image = service(&compose, "kafka")["image"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(kafka_image.starts_with("apache/kafka:4."), "{kafka_image}");
    assert_eq!(
        service(&compose, "kafka")["environment"]["KAFKA_PROCESS_ROLES"].as_str(),
        Some("broker,controller"),
        "one KRaft node"
    );
}
