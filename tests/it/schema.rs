//! The committed JSON Schema (`schema/s360-sync.schema.json`) against every example pipeline and pipeline test file, read by a real JSON Schema validator (Python's `jsonschema`, as editors' YAML plugins would read them).

use std::process::Command;

use crate::support::root;

const SCRIPT: &str = r#"
import glob, json, sys, yaml, jsonschema
# YAML 1.2 as editors read it: timestamps stay text.
class Loader(yaml.SafeLoader): pass
Loader.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
root = sys.argv[1]
schema = json.load(open(root + "/schema/s360-sync.schema.json"))
validator = jsonschema.Draft202012Validator(schema)
files = sorted(glob.glob(root + "/pipelines/*.yaml") + glob.glob(root + "/pipelines/tests/*.yaml"))
bad = 0
for f in files:
    first = open(f).readline()
    if "yaml-language-server: $schema=" not in first:
        print(f, "has no yaml-language-server line"); bad += 1
    e = jsonschema.exceptions.best_match(validator.iter_errors(yaml.load(open(f), Loader=Loader)))
    if e is not None:
        print(f, list(e.absolute_path), e.message[:200]); bad += 1
print(len(files), "files")
sys.exit(1 if bad or len(files) < 8 else 0)
"#;

#[test]
fn every_example_file_validates_against_the_committed_schema() {
    if !crate::support::python::has("jsonschema, yaml", "jsonschema pyyaml") {
        return;
    }
    let o = Command::new("python3")
        .args(["-c", SCRIPT, root().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
