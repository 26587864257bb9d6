//! The deployment files stay in step with the tool: the Kubernetes CronJob's pipeline validates, its command line is one `s360-sync` takes, every variable the pipeline reads is set by the container, and the image's user and state folder are the ones the manifest mounts. The image itself is built and run by a long test (`#[ignore]`d: a release build inside Docker takes about half an hour on two cores, and needs a Docker engine).

use std::process::Command;

use serde_json::Value;

use crate::support::cli::Cmd;
use crate::support::{root, text};

/// The manifest's documents, as a YAML parser (Python's PyYAML) reads them.
fn manifest() -> Vec<Value> {
    let o = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
            root().join("deploy/kubernetes/cronjob.yaml").to_str().unwrap(),
        ])
        .output()
        .expect("python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the manifest"))
}

#[test]
fn the_cronjob_runs_a_valid_pipeline_with_a_command_line_the_tool_takes() {
    if !crate::support::python::has("yaml", "pyyaml") {
        return;
    }
    let docs = manifest();
    let pipelines = kind(&docs, "ConfigMap");
    let job = kind(&docs, "CronJob");
    let pod = &job["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let env: Vec<(&str, Option<&str>)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["value"].as_str()))
        .collect();

    // The pipeline file the command names is the ConfigMap's, where the
    // pod mounts it.
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["configMap"]["name"] == pipelines["metadata"]["name"])
        .unwrap();
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .unwrap();
    let (dir, file) = args[1].rsplit_once('/').unwrap();
    assert_eq!(dir, mount["mountPath"].as_str().unwrap());
    let text_of = pipelines["data"][file].as_str().unwrap();

    // It validates, with the variables the container sets (secrets given
    // test values); a variable it reads that the container does not set
    // would fail here.
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join(file);
    std::fs::write(&p, text_of).unwrap();
    let mut c = Cmd::new(tmp.path()).args(&["validate", "--json", p.to_str().unwrap()]);
    for var in [
        "CRM_WEBHOOK_URL",
        "CRM_WEBHOOK_SECRET",
        "S360_SYNC_STATE_DIR",
    ] {
        c = c.env_remove(var);
    }
    for (name, value) in &env {
        let value = match (*name, value) {
            (_, Some(v)) => v.to_string(),
            ("CRM_WEBHOOK_URL", None) => "https://crm.example.com/hooks/orders".into(),
            (_, None) => "test-value".into(),
        };
        c = c.env(name, value);
    }
    let o = c.run();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let verdict: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["kind"], "sync");
    // The signing secret is named in the pipeline and set by the container.
    let secret = text_of
        .lines()
        .find_map(|l| l.trim().strip_prefix("secret_env: "))
        .unwrap();
    assert!(env.iter().any(|(n, _)| *n == secret), "{secret} not set");

    // Every flag of the command line is one of its subcommand's.
    let o = Cmd::new(tmp.path()).args(&[args[0], "--help"]).run();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let help = String::from_utf8_lossy(&o.stdout).to_string();
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(help.contains(flag), "`{} {flag}` is not an option", args[0]);
    }

    // The image's user and state folder are the pod's.
    let docker = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let user = pod["securityContext"]["runAsUser"].as_u64().unwrap();
    assert!(docker.contains(&format!("USER {user}:")), "USER {user}");
    let state = env
        .iter()
        .find(|(n, _)| *n == "S360_SYNC_STATE_DIR")
        .and_then(|(_, v)| *v)
        .unwrap();
    assert!(docker.contains(&format!("ENV S360_SYNC_STATE_DIR={state}")));
    assert!(
        container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["mountPath"] == state),
        "the state folder is a volume"
    );
}

/// `docker` (or the client `DOCKER` names) with these arguments, its
/// output. BuildKit is on: the Dockerfile's cache mounts need it.
fn docker(args: &[&str]) -> std::process::Output {
    let client = std::env::var("DOCKER").unwrap_or_else(|_| "docker".into());
    Command::new(client)
        .args(args)
        .current_dir(root())
        .env("DOCKER_BUILDKIT", "1")
        .output()
        .expect("docker")
}

/// The Dockerfile builds, and its image runs the whole job (the demo) as
/// its unprivileged user, with the CA roots for HTTPS, the state folder the
/// CronJob mounts, and the example pipelines valid inside it. The base
/// images (`rust:1.95-bookworm`, `debian:bookworm-slim`) come from Docker
/// Hub, or from local images of those names where it cannot be reached.
#[test]
#[ignore = "long (a release build in Docker, ~30 min): [DOCKER=client] cargo test --test it the_image -- --ignored"]
fn the_image_builds_and_runs_the_demo_as_its_unprivileged_user() {
    let info = docker(&["info"]);
    assert!(
        info.status.success(),
        "no Docker engine: {}",
        String::from_utf8_lossy(&info.stderr)
    );
    let tag = "s360-sync:test";
    let o = docker(&["build", "--network", "host", "-t", tag, "."]);
    assert!(o.status.success(), "{}", text(&o));

    let o = docker(&["run", "--rm", tag, "--version"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        text(&o)
    );
    let o = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        tag,
        "-c",
        "id -u; stat -c %u /var/lib/s360-sync; pwd; echo $S360_SYNC_STATE_DIR; \
         test -s /etc/ssl/certs/ca-certificates.crt && echo roots",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "65532\n65532\n/var/lib/s360-sync\n/var/lib/s360-sync\nroots\n"
    );

    // As the README runs it, the pipelines mounted where the CronJob mounts them.
    let pipelines = format!("{}:/etc/s360-sync:ro", root().join("pipelines").display());
    let o = docker(&[
        "run",
        "--rm",
        "-v",
        &pipelines,
        tag,
        "validate",
        "/etc/s360-sync/sync-orders.yaml",
    ]);
    assert!(o.status.success(), "{}", text(&o));

    // The whole job inside the image: exports generated, the sandbox CRM on
    // the container's loopback, import, sync, check; exit 0 when clean.
    let o = docker(&["run", "--rm", tag, "demo"]);
    assert!(o.status.success(), "{}", text(&o));
}
