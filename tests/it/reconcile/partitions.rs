//! Partitioned checks: `--partitions`, `--memory-limit` and `memory_limit:` give the reports of one pass, and steps that cannot run per partition refuse them.

use super::{REPORTS, code, committed, reconcile, stderr};
use crate::support::cli::Cmd;
use crate::support::pipeline::{Step, names};
use crate::support::reconcile::ReconcilePipeline;
use crate::support::root;

#[test]
fn partitioned_checks_give_byte_identical_reports() {
    let tmp = tempfile::tempdir().unwrap();
    // A step after the aggregate: the CRM side is split twice, before the
    // aggregate by its columns, then after it by key.
    let after = tmp.path().join("after");
    std::fs::create_dir_all(&after).unwrap();
    let mut orders = ReconcilePipeline::orders();
    assert!(matches!(
        orders.right.transforms.last(),
        Some(Step::Aggregate(..))
    ));
    orders
        .right
        .transforms
        .push(Step::Trim(names(&["currency"])));
    let twice = orders.write_as(&after, "reconcile-orders.yaml");
    // Composite keys, duplicates and null keys (edge, no aggregate); order
    // lines aggregated by the key, the last step, so split once before the
    // aggregate (orders); and the same split twice.
    for (name, p, aggregated) in [
        ("edge", committed("reconcile-edge.yaml"), None),
        ("orders", committed("reconcile-orders.yaml"), Some(true)),
        ("orders-twice", twice, Some(false)),
    ] {
        let whole = tmp.path().join(format!("{name}-1"));
        let o = reconcile(&p, &whole, &["--partitions", "1"]);
        let expected = code(&o);
        assert!(expected == 0 || expected == 5, "{}", stderr(&o));
        assert!(!stderr(&o).contains("partitions"), "{}", stderr(&o));
        for parts in ["2", "7"] {
            let out = tmp.path().join(format!("{name}-{parts}"));
            let o = reconcile(&p, &out, &["--partitions", parts]);
            assert_eq!(code(&o), expected, "{}", stderr(&o));
            let e = stderr(&o);
            assert!(e.contains(&format!("into {parts} partitions")), "{e}");
            assert!(
                e.contains(&format!("comparing partition {parts}/{parts}")),
                "{e}"
            );
            if let Some(once) = aggregated {
                assert_eq!(e.contains("rows before the aggregate"), once, "{e}");
            }
            for n in REPORTS {
                assert_eq!(
                    std::fs::read(whole.join(n)).unwrap(),
                    std::fs::read(out.join(n)).unwrap(),
                    "{name} in {parts} partitions: {n}"
                );
            }
        }
    }
}

#[test]
fn a_small_memory_limit_splits_the_check_and_changes_no_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let p = committed("reconcile-orders.yaml");
    let whole = tmp.path().join("whole");
    let code_whole = code(&reconcile(&p, &whole, &[]));
    // The test exports are a few KiB: 8KiB cannot hold both sides at once.
    let small = tmp.path().join("small");
    let o = reconcile(&p, &small, &["--memory-limit", "8KiB"]);
    assert_eq!(code(&o), code_whole, "{}", stderr(&o));
    assert!(stderr(&o).contains(" partitions"), "{}", stderr(&o));
    for n in REPORTS {
        assert_eq!(
            std::fs::read(whole.join(n)).unwrap(),
            std::fs::read(small.join(n)).unwrap(),
            "{n}"
        );
    }
    // The same from the pipeline file.
    let q = ReconcilePipeline {
        memory_limit: Some("8KiB".into()),
        ..ReconcilePipeline::orders()
    }
    .write_as(tmp.path(), "reconcile-orders.yaml");
    let o = reconcile(&q, tmp.path().join("from-file"), &[]);
    assert!(stderr(&o).contains(" partitions"), "{}", stderr(&o));
    let o = reconcile(&p, tmp.path().join("bad"), &["--memory-limit", "lots"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid size"), "{}", stderr(&o));
}

#[test]
fn steps_that_cannot_run_per_partition_refuse_partitions() {
    let tmp = tempfile::tempdir().unwrap();
    // An `sql` step after the aggregate could look across groups.
    let mut orders = ReconcilePipeline::orders();
    orders
        .right
        .transforms
        .push(Step::Sql("SELECT * FROM source".into()));
    let p = orders.write_as(tmp.path(), "reconcile-orders.yaml");
    let o = reconcile(&p, tmp.path().join("a"), &["--partitions", "3"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("right.transforms["), "{}", stderr(&o));
    assert!(!tmp.path().join("a").exists());
    // Asked for in the file, `validate` finds it too.
    let other = tempfile::tempdir().unwrap();
    let q = ReconcilePipeline {
        partitions: Some(3),
        ..orders
    }
    .write_as(other.path(), "reconcile-orders.yaml");
    let o = Cmd::new(&root()).arg("validate").arg(&q).run();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("right.transforms["), "{}", stderr(&o));
    // Without a request, a tiny memory limit falls back to one pass.
    let o = reconcile(&p, tmp.path().join("b"), &["--memory-limit", "8KiB"]);
    assert!(code(&o) == 0 || code(&o) == 5, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("comparing all at once"),
        "{}",
        stderr(&o)
    );
}
