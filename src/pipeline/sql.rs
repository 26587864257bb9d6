//! Which SQL a pipeline's `sql`, `derive` and `filter` steps may hold: no table function, one `SELECT`. Pure: the text is parsed, never run.

use std::ops::ControlFlow;

use sqlparser::ast::{Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserOptions};

/// A parser set up as Polars' SQL interface sets its own up, so that the
/// checks below see the statements Polars would run.
fn sql_parser() -> Parser<'static> {
    Parser::new(&GenericDialect).with_options(ParserOptions {
        trailing_commas: true,
        ..Default::default()
    })
}

/// Refuses an `sql` step's query unless it is one `SELECT` (or `WITH`)
/// whose every `FROM` and `JOIN` names a table (`source`, a `WITH` name) or
/// a subquery. A table function (`read_csv('/etc/passwd')`, `read_parquet`,
/// `read_ipc`, `read_json`, `read_ndjson`, in any case or quoting), and any
/// other function, `TABLE(...)` or `UNNEST` in `FROM`, is refused: Polars
/// would read any file of this machine with it. Pure: the text is parsed,
/// never run. The error says what was found, for the step's field.
pub fn check_sql_query(query: &str) -> Result<(), String> {
    let statements = parse_statements(query).map_err(|e| format!("is not valid SQL: {e}"))?;
    if let Some(reason) = table_function_in(&statements) {
        return Err(reason);
    }
    match statements.as_slice() {
        [Statement::Query(_)] => Ok(()),
        [_] => Err("must be a SELECT over `source`".into()),
        _ => Err(format!(
            "must be exactly one SELECT statement, found {}",
            statements.len()
        )),
    }
}

/// [`check_sql_query`] for the SQL expression of a `derive` or `filter`
/// step: a subquery inside it may not use a table function either.
pub fn check_sql_expr(expr: &str) -> Result<(), String> {
    let item =
        parse_select_item(expr).map_err(|e| format!("is not a valid SQL expression: {e}"))?;
    table_function_in(&item).map_or(Ok(()), Err)
}

fn parse_statements(query: &str) -> Result<Vec<Statement>, sqlparser::parser::ParserError> {
    sql_parser()
        .try_with_sql(query)
        .and_then(|mut p| p.parse_statements())
}

/// How Polars reads the expression of `derive` and `filter`: as one select item.
fn parse_select_item(
    expr: &str,
) -> Result<sqlparser::ast::SelectItem, sqlparser::parser::ParserError> {
    sql_parser()
        .try_with_sql(expr)
        .and_then(|mut p| p.parse_select_item())
}

/// Why `ast` reads something other than tables and subqueries, if it does.
fn table_function_in<T: Visit + ?Sized>(ast: &T) -> Option<String> {
    match ast.visit(&mut OnlyTables) {
        ControlFlow::Break(reason) => Some(reason),
        ControlFlow::Continue(()) => None,
    }
}

/// Stops at the first `FROM` item that is neither a named table nor a subquery.
struct OnlyTables;

impl Visitor for OnlyTables {
    type Break = String;

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
        match factor {
            TableFactor::Table {
                name, args: None, ..
            } if !name.0.is_empty() => ControlFlow::Continue(()),
            TableFactor::Derived { .. } | TableFactor::NestedJoin { .. } => {
                ControlFlow::Continue(())
            }
            TableFactor::Table { name, .. } | TableFactor::Function { name, .. } => {
                ControlFlow::Break(format!(
                    "`{name}(...)` in FROM is a table function, which can read any file of this machine: an SQL step reads only `source` (its input), its WITH names and subqueries"
                ))
            }
            _ => ControlFlow::Break(
                "only tables (`source`, WITH names) and subqueries may appear in FROM: table functions, TABLE(...), UNNEST and the like are not allowed, they can read any file of this machine".into(),
            ),
        }
    }
}

/// The table-function refusal of an `sql` step's query that parses; text
/// that does not parse is left to Polars to report.
pub fn table_function_in_query(query: &str) -> Option<String> {
    parse_statements(query)
        .ok()
        .and_then(|s| table_function_in(&s))
}

/// [`table_function_in_query`] for a `derive` or `filter` expression.
pub fn table_function_in_expr(expr: &str) -> Option<String> {
    parse_select_item(expr)
        .ok()
        .and_then(|i| table_function_in(&i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_functions_in_sql_are_refused_in_any_case_quoting_or_nesting() {
        for query in [
            "SELECT * FROM read_csv('/etc/passwd')",
            "select * from READ_CSV('/etc/passwd')",
            r#"SELECT * FROM "read_csv"('/etc/passwd')"#,
            "SELECT * FROM read_parquet('/etc/x.parquet')",
            "SELECT * FROM read_ipc('/etc/x.ipc')",
            "SELECT * FROM read_json('/etc/x.json')",
            "SELECT * FROM read_ndjson('/etc/x.ndjson')",
            "SELECT * FROM my_own_function(1)",
            "SELECT * FROM source JOIN read_csv('/etc/passwd') AS p ON true",
            "SELECT * FROM source, read_csv('/etc/passwd')",
            "SELECT * FROM (SELECT * FROM read_csv('/etc/passwd')) AS t",
            "WITH t AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM t",
            "SELECT * FROM source UNION ALL SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM source WHERE orderId IN (SELECT orderId FROM read_csv('/etc/passwd'))",
            "SELECT (SELECT max(x) FROM read_csv('/etc/passwd')) AS leak FROM source",
            "SELECT * FROM TABLE(read_csv('/etc/passwd'))",
            "SELECT * FROM UNNEST([1, 2]) AS t(x)",
        ] {
            let err = check_sql_query(query).expect_err(query);
            assert!(
                err.contains("table function") || err.contains("only tables"),
                "{query}: {err}"
            );
        }
        for expr in [
            "orderId IN (SELECT orderId FROM read_csv('/etc/passwd'))",
            "EXISTS (SELECT 1 FROM READ_PARQUET('/etc/x'))",
        ] {
            assert!(check_sql_expr(expr).is_err(), "{expr}");
        }
    }

    #[test]
    fn plain_sql_over_source_passes_the_check() {
        for query in [
            "SELECT * FROM source",
            "SELECT *, saleAmount / 100 AS amount FROM source WHERE orderState <> 'X'",
            "WITH t AS (SELECT orderId FROM source) SELECT * FROM t JOIN source USING (orderId)",
            "SELECT * FROM (SELECT * FROM source) AS s ORDER BY orderId LIMIT 2",
            "SELECT read_csv FROM source",
        ] {
            check_sql_query(query).unwrap_or_else(|e| panic!("{query}: {e}"));
        }
        for expr in [
            "saleAmount / 100",
            "orderState <> 'ABANDONED'",
            "upper(orderState)",
        ] {
            check_sql_expr(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        }
        assert!(check_sql_query("SELECT * FROM source; SELECT 1").is_err());
        assert!(check_sql_query("DROP TABLE source").is_err());
    }
}
