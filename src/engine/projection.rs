//! The columns a lazy plan reads of its input, from Polars' optimised plan (projection pushdown).

use polars::prelude::*;

/// The columns of `schema` that the plan `build` makes on top of it reads,
/// from Polars' optimised plan (projection pushdown); `None` when unknown.
pub fn needed_columns(
    schema: &Schema,
    build: &dyn Fn(LazyFrame) -> PolarsResult<LazyFrame>,
) -> Option<Vec<PlSmallStr>> {
    use polars_plan::plans::IR;
    let empty = DataFrame::empty_with_schema(schema);
    let plan = build(empty.lazy()).ok()?.to_alp_optimized().ok()?;
    let mut stack = vec![plan.lp_top];
    while let Some(node) = stack.pop() {
        match plan.lp_arena.get(node) {
            IR::DataFrameScan {
                schema,
                output_schema,
                ..
            } => {
                let s = output_schema.as_ref().unwrap_or(schema);
                return Some(s.iter_names().cloned().collect());
            }
            ir => ir.copy_inputs(&mut stack),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needed_columns_follow_the_plan() {
        let schema = Schema::from_iter([
            Field::new("a".into(), DataType::String),
            Field::new("b".into(), DataType::Int64),
            Field::new("unused".into(), DataType::String),
        ]);
        let build = |lf: LazyFrame| -> PolarsResult<LazyFrame> {
            Ok(lf.group_by([col("a")]).agg([col("b").sum()]))
        };
        let mut cols = needed_columns(&schema, &build).unwrap();
        cols.sort();
        assert_eq!(cols, vec![PlSmallStr::from("a"), PlSmallStr::from("b")]);
    }
}
