//! Typed builder of reconcile pipelines (sides, compared fields, fail_if, output), with the two committed pipelines as presets.
//!
//! [`ReconcilePipeline::edge`] and [`ReconcilePipeline::orders`] say what
//! `pipelines/reconcile-edge.yaml` and `pipelines/reconcile-orders.yaml` say,
//! their data paths absolute; the test
//! `presets_give_the_reports_of_the_committed_pipelines` holds them to it.

use std::path::{Path, PathBuf};

use super::fs::{root, write};
use super::pipeline::{Csv, Source, Step, names, pairs};
use super::yaml::{Yaml, map};

/// One side of a check: its source and transform steps.
#[derive(Debug, Clone)]
pub struct Side {
    /// `source:`.
    pub source: Source,
    /// `transforms:`.
    pub transforms: Vec<Step>,
}

/// One `compare:` entry.
#[derive(Debug, Clone, Default)]
pub struct Field {
    /// `field:`.
    pub field: String,
    /// `absolute:` tolerance.
    pub absolute: Option<String>,
    /// `time_tolerance:`.
    pub time_tolerance: Option<String>,
    /// `trim: true` and `ignore_case: true`.
    pub loose_text: bool,
}

impl Field {
    /// Compared as it is.
    pub fn exact(field: &str) -> Self {
        Field {
            field: field.into(),
            ..Field::default()
        }
    }

    /// Numbers within `tolerance`.
    pub fn absolute(field: &str, tolerance: &str) -> Self {
        Field {
            absolute: Some(tolerance.into()),
            ..Field::exact(field)
        }
    }

    /// Times within `tolerance`.
    pub fn time(field: &str, tolerance: &str) -> Self {
        Field {
            time_tolerance: Some(tolerance.into()),
            ..Field::exact(field)
        }
    }

    /// Text, trimmed and in any letter case.
    pub fn loose_text(field: &str) -> Self {
        Field {
            loose_text: true,
            ..Field::exact(field)
        }
    }

    fn yaml(&self) -> Yaml {
        let b = map()
            .put("field", &self.field)
            .opt("absolute", self.absolute.as_deref());
        let b = if self.loose_text {
            b.put("trim", true).put("ignore_case", true)
        } else {
            b
        };
        b.opt("time_tolerance", self.time_tolerance.as_deref())
            .build()
    }
}

/// The fields both committed checks compare first: the amount to the
/// cent, currency and channel as loose text.
fn money_and_labels() -> Vec<Field> {
    vec![
        Field::absolute("amount", "0.01"),
        Field::loose_text("currency"),
        Field::loose_text("channel"),
    ]
}

/// A reconcile pipeline file.
#[derive(Debug, Clone)]
pub struct ReconcilePipeline {
    /// `name:`.
    pub name: String,
    /// `description:`.
    pub description: Option<String>,
    /// `left:` (S-360).
    pub left: Side,
    /// `right:` (the CRM).
    pub right: Side,
    /// `duplicates:` (`report`, `fail`).
    pub duplicates: Option<String>,
    /// `memory_limit:`.
    pub memory_limit: Option<String>,
    /// `partitions:`.
    pub partitions: Option<u32>,
    /// `compare:`.
    pub compare: Vec<Field>,
    /// `fail_if:` (category, at most this many).
    pub fail_if: Vec<(String, u64)>,
    /// `output.storage:` options.
    pub output_storage: Vec<(String, String)>,
}

/// A committed test data path, absolute.
fn data(rel: &str) -> String {
    root()
        .join("testdata/reconcile")
        .join(rel)
        .display()
        .to_string()
}

impl ReconcilePipeline {
    /// What `pipelines/reconcile-edge.yaml` says.
    pub fn edge() -> Self {
        ReconcilePipeline {
            name: "reconcile-edge".into(),
            description: None,
            left: Side {
                source: Source::at(&data("edge/s360_operations.csv"))
                    .csv(Csv::semicolon())
                    .keys(&["orderId", "operationId"])
                    .columns(&[("orderId", "int64"), ("createdAt", "timestamp")]),
                transforms: vec![Step::Scale(names(&["amount"]), 2)],
            },
            right: Side {
                source: Source::at(&data("edge/crm_operations.csv"))
                    .csv(Csv {
                        encoding: Some("cp1252".into()),
                        null_values: names(&["NULL"]),
                        ..Csv::default()
                    })
                    .keys(&["secutix__SecuTixOrderId__c", "secutix__SyncId__c"])
                    .columns(&[("secutix__Total_Amount__c", "decimal(18,2)")]),
                transforms: vec![Step::Rename(pairs(&[
                    ("secutix__Total_Amount__c", "amount"),
                    ("secutix__CatalogCurrency__c", "currency"),
                    ("secutix__SalesChannel__c", "channel"),
                    ("secutix__CreationDate__c", "createdAt"),
                    ("City__c", "city"),
                ]))],
            },
            duplicates: None,
            memory_limit: None,
            partitions: None,
            compare: [
                money_and_labels(),
                vec![Field::time("createdAt", "1s"), Field::exact("city")],
            ]
            .concat(),
            fail_if: [
                ("missing_in_crm", 1),
                ("missing_in_s360", 1),
                ("mismatched", 3),
                ("duplicate_key", 1),
                ("null_key", 1),
            ]
            .map(|(c, n)| (c.to_string(), n))
            .into(),
            output_storage: Vec::new(),
        }
    }

    /// What `pipelines/reconcile-orders.yaml` says.
    pub fn orders() -> Self {
        ReconcilePipeline {
            name: "reconcile-orders".into(),
            description: Some("S-360 orders vs CRM order lines aggregated to orders".into()),
            left: Side {
                source: Source::at(&data("s360/orders_*.csv"))
                    .csv(Csv::semicolon())
                    .key("orderId")
                    .columns(&[("creationDateTime", "timestamp")])
                    .timezone("+00:00"),
                transforms: vec![
                    Step::Filter("operationCount > 0".into()),
                    Step::Scale(names(&["saleAmount"]), 2),
                    Step::Rename(pairs(&[
                        ("saleAmount", "amount"),
                        ("currencyCode", "currency"),
                        ("salesChannelCode", "channel"),
                        ("contactReference", "contact"),
                        ("creationDateTime", "created"),
                    ])),
                ],
            },
            right: Side {
                source: Source::at(&data("crm/crm_orders.csv"))
                    .csv(Csv::semicolon())
                    .key("secutix__SecuTixOrderId__c")
                    .columns(&[
                        ("secutix__Total_Amount__c", "decimal(18,2)"),
                        ("secutix__CreationDate__c", "timestamp"),
                    ]),
                transforms: vec![Step::Aggregate(
                    names(&["secutix__SecuTixOrderId__c"]),
                    pairs(&[
                        ("amount", "sum(secutix__Total_Amount__c)"),
                        ("currency", "first(secutix__CatalogCurrency__c)"),
                        ("channel", "first(secutix__SalesChannel__c)"),
                        ("contact", "first(secutix__ContactSTXNumber__c)"),
                        ("created", "first(secutix__CreationDate__c)"),
                    ]),
                )],
            },
            duplicates: None,
            memory_limit: None,
            partitions: None,
            compare: [
                money_and_labels(),
                vec![Field::exact("contact"), Field::time("created", "1s")],
            ]
            .concat(),
            fail_if: Vec::new(),
            output_storage: Vec::new(),
        }
    }

    /// Adds an `output.storage:` option.
    pub fn output_storage(mut self, key: &str, value: &str) -> Self {
        self.output_storage.push((key.into(), value.into()));
        self
    }

    /// The document.
    pub fn yaml(&self) -> Yaml {
        let side = |s: &Side| {
            map()
                .put("source", s.source.yaml())
                .non_empty(
                    "transforms",
                    Yaml::List(s.transforms.iter().map(Step::yaml).collect()),
                )
                .build()
        };
        let fail_if = Yaml::Map(
            self.fail_if
                .iter()
                .map(|(c, n)| (c.clone(), Yaml::from(*n)))
                .collect(),
        );
        let output = (!self.output_storage.is_empty())
            .then(|| map().put("storage", &self.output_storage[..]).build());
        map()
            .put("version", 1i64)
            .put("kind", "reconcile")
            .put("name", &self.name)
            .opt("description", self.description.as_deref())
            .put("left", side(&self.left))
            .put("right", side(&self.right))
            .opt("duplicates", self.duplicates.as_deref())
            .opt("memory_limit", self.memory_limit.as_deref())
            .opt("partitions", self.partitions)
            .put(
                "compare",
                Yaml::List(self.compare.iter().map(Field::yaml).collect()),
            )
            .non_empty("fail_if", fail_if)
            .opt("output", output)
            .build()
    }

    /// Writes it as `dir/<file>`.
    pub fn write_as(&self, dir: &Path, file: &str) -> PathBuf {
        let p = dir.join(file);
        write(&p, self.yaml().to_text());
        p
    }
}
