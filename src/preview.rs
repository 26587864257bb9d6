//! `preview`: the first records of a sync pipeline after lines and transforms, as a table or JSON.

use arrow::array::RecordBatch;

use crate::cli::CliError;
use crate::extract::{Extractor, records_json};
use crate::pipeline::Pipeline;

/// Render the first `limit` records of a sync pipeline.
pub async fn preview(p: &Pipeline, limit: usize, json: bool) -> Result<String, CliError> {
    let spec = p.as_sync()?;
    let ex = Extractor::new(p, spec).map_err(CliError::failure)?;
    let lines = ex.lines_index(None).await.map_err(CliError::failure)?;
    let mut out: Vec<RecordBatch> = Vec::new();
    let mut n = 0;
    'files: for file in ex.orders.list().await.map_err(CliError::failure)? {
        let data = ex.orders.fetch(&file).await.map_err(CliError::failure)?;
        let batches = ex.orders.batches(&file, data).map_err(CliError::failure)?;
        for batch in batches {
            let batch = batch.map_err(CliError::failure)?;
            let batch = ex
                .finish(&batch, lines.as_ref(), &file.name)
                .map_err(CliError::failure)?;
            let take = (limit - n).min(batch.num_rows());
            out.push(batch.slice(0, take));
            n += take;
            if n >= limit {
                break 'files;
            }
        }
    }
    if json {
        let mut text = String::new();
        for b in &out {
            for r in records_json(b).map_err(CliError::failure)? {
                text.push_str(&r);
                text.push('\n');
            }
        }
        Ok(text)
    } else {
        let table = arrow::util::pretty::pretty_format_batches(&out).map_err(CliError::failure)?;
        Ok(format!("{table}\n{n} record(s) shown\n"))
    }
}
