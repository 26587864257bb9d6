"""Consistency-check benchmark: s360-sync reconcile vs DuckDB, a plain Polars (Python) script and datacompy.

Each tool answers the same question on the same files: full outer join of
S-360 orders (minor units, abandoned orders filtered out) with the CRM's order
lines aggregated to orders (major units), counting orders missing on each
side and orders whose amount (0.01), currency, channel, contact or creation
time (1 s) differ. Called from bench.py.
"""

import json
import os
import subprocess
import sys

PIPELINE = """version: 1
kind: reconcile
name: bench
left:
  source:
    location: {left}
    csv: {{ delimiter: ";" }}
    key: orderId
    columns: {{ creationDateTime: timestamp }}
  transforms:
    - {{ type: filter, expr: "operationCount > 0" }}
    - {{ type: scale, columns: [saleAmount], digits: 2 }}
    - type: rename
      columns: {{ saleAmount: amount, currencyCode: currency, salesChannelCode: channel, contactReference: contact, creationDateTime: created }}
right:
  source:
    location: {right}
    csv: {{ delimiter: ";" }}
    key: secutix__SecuTixOrderId__c
    columns: {{ secutix__Total_Amount__c: "decimal(18,2)", secutix__CreationDate__c: timestamp }}
  transforms:
    - type: aggregate
      by: [secutix__SecuTixOrderId__c]
      aggregations:
        amount: sum(secutix__Total_Amount__c)
        currency: first(secutix__CatalogCurrency__c)
        channel: first(secutix__SalesChannel__c)
        contact: first(secutix__ContactSTXNumber__c)
        created: first(secutix__CreationDate__c)
compare:
  - {{ field: amount, absolute: "0.01" }}
  - {{ field: currency }}
  - {{ field: channel }}
  - {{ field: contact }}
  - {{ field: created, time_tolerance: 1s }}
fail_if: {{ missing_in_crm: 1000000000, missing_in_s360: 1000000000, mismatched: 1000000000 }}
"""

DUCKDB = r"""
import duckdb, json, sys
duckdb.sql('SET enable_progress_bar=false')
left, right = sys.argv[1], sys.argv[2]
reader = "read_parquet('{}')" if left.endswith('.parquet') else "read_csv('{}', delim=';', header=true)"
q = f'''
WITH l AS (
  SELECT CAST(orderId AS VARCHAR) k, CAST(saleAmount AS DECIMAL(18,0)) / 100 amount, currencyCode cur,
         salesChannelCode ch, CAST(contactReference AS VARCHAR) contact, CAST(creationDateTime AS TIMESTAMP) created
  FROM {reader.format(left)} WHERE operationCount > 0),
r AS (
  SELECT CAST(secutix__SecuTixOrderId__c AS VARCHAR) k, SUM(CAST(secutix__Total_Amount__c AS DECIMAL(18,2))) amount,
         FIRST(secutix__CatalogCurrency__c) cur, FIRST(secutix__SalesChannel__c) ch,
         FIRST(CAST(secutix__ContactSTXNumber__c AS VARCHAR)) contact,
         FIRST(CAST(secutix__CreationDate__c AS TIMESTAMPTZ)::TIMESTAMP) created
  FROM {reader.format(right)} GROUP BY 1)
SELECT
  count(*) FILTER (WHERE r.k IS NULL),
  count(*) FILTER (WHERE l.k IS NULL),
  count(*) FILTER (WHERE l.k IS NOT NULL AND r.k IS NOT NULL AND (
      abs(l.amount - r.amount) > 0.01 OR l.cur <> r.cur OR l.ch <> r.ch OR l.contact <> r.contact
      OR abs(epoch(l.created) - epoch(r.created)) > 1))
FROM l FULL OUTER JOIN r ON l.k = r.k
'''
a, b, c = duckdb.sql(q).fetchall()[0]
print(json.dumps({"missing_in_crm": a, "missing_in_s360": b, "mismatched": c}))
"""

POLARS = r"""
import polars as pl, json, sys
left, right = sys.argv[1], sys.argv[2]
def scan(p):
    return pl.scan_parquet(p) if p.endswith('.parquet') else pl.scan_csv(p, separator=';', infer_schema_length=10000)
l = (scan(left).filter(pl.col('operationCount') > 0).select(
        pl.col('orderId').cast(pl.Utf8).alias('k'),
        (pl.col('saleAmount').cast(pl.Decimal(18, 0)) / 100).alias('amount'),
        pl.col('currencyCode').alias('cur'), pl.col('salesChannelCode').alias('ch'),
        pl.col('contactReference').cast(pl.Utf8).alias('contact'),
        pl.col('creationDateTime').cast(pl.Utf8).str.to_datetime().alias('created')))
r = (scan(right).group_by(pl.col('secutix__SecuTixOrderId__c').cast(pl.Utf8).alias('k')).agg(
        pl.col('secutix__Total_Amount__c').cast(pl.Utf8).cast(pl.Decimal(18, 2)).sum().alias('amount_r'),
        pl.col('secutix__CatalogCurrency__c').first().alias('cur_r'),
        pl.col('secutix__SalesChannel__c').first().alias('ch_r'),
        pl.col('secutix__ContactSTXNumber__c').cast(pl.Utf8).first().alias('contact_r'),
        pl.col('secutix__CreationDate__c').cast(pl.Utf8).str.replace('Z', '').str.to_datetime().first().alias('created_r')))
j = l.join(r, on='k', how='full', coalesce=False)
both = pl.col('k').is_not_null() & pl.col('k_right').is_not_null()
diff = ((pl.col('amount') - pl.col('amount_r')).abs() > 0.01) | (pl.col('cur') != pl.col('cur_r')) | \
       (pl.col('ch') != pl.col('ch_r')) | (pl.col('contact') != pl.col('contact_r')) | \
       ((pl.col('created') - pl.col('created_r')).dt.total_milliseconds().abs() > 1000)
out = j.select(
    pl.col('k_right').is_null().sum().alias('missing_in_crm'),
    pl.col('k').is_null().sum().alias('missing_in_s360'),
    (both & diff).sum().alias('mismatched')).collect()
print(json.dumps({c: int(out[c][0]) for c in out.columns}))
"""

DATACOMPY = r"""
import pandas as pd, datacompy, json, sys
left, right = sys.argv[1], sys.argv[2]
rd = (lambda p: pd.read_parquet(p)) if left.endswith('.parquet') else (lambda p: pd.read_csv(p, sep=';', dtype=str))
l = rd(left)
l = l[l['operationCount'].astype(int) > 0]
l = pd.DataFrame({'k': l['orderId'].astype(str), 'amount': l['saleAmount'].astype(int) / 100,
                  'cur': l['currencyCode'], 'ch': l['salesChannelCode'], 'contact': l['contactReference'].astype(str),
                  'created': pd.to_datetime(l['creationDateTime'].astype(str))})
r = rd(right)
r['amount'] = r['secutix__Total_Amount__c'].astype(float)
r = r.groupby(r['secutix__SecuTixOrderId__c'].astype(str)).agg(
    amount=('amount', 'sum'), cur=('secutix__CatalogCurrency__c', 'first'), ch=('secutix__SalesChannel__c', 'first'),
    contact=('secutix__ContactSTXNumber__c', 'first'), created=('secutix__CreationDate__c', 'first')).reset_index()
r = r.rename(columns={'secutix__SecuTixOrderId__c': 'k'})
r['contact'] = r['contact'].astype(str)
r['created'] = pd.to_datetime(r['created'].astype(str)).dt.tz_localize(None)
c = datacompy.PandasCompare(l, r, join_columns='k', abs_tol=0.01, df1_name='s360', df2_name='crm')
mism = c.intersect_rows[~c.intersect_rows[[col for col in c.intersect_rows.columns if col.endswith('_match')]].all(axis=1)]
print(json.dumps({'missing_in_crm': len(c.df1_unq_rows), 'missing_in_s360': len(c.df2_unq_rows), 'mismatched': len(mism)}))
"""


def run(bin_path, work, rows, measure_rss, table, log, ensure_python, gen, repeat=3, baseline=None):
    """`repeat`: s360-sync and DuckDB run this many times each, interleaved
    (ours, ours in 8 parts, DuckDB, then again), and their medians are
    compared: on a shared machine one run of each can differ by a third for
    the same work. Polars and datacompy, 10x slower, run once. `baseline`:
    another s360-sync binary (an earlier build) run interleaved with this
    one on the same files, so a change's cost is measured in the same run."""
    ensure_python("duckdb", "polars", "datacompy", "pandas", "pyarrow")
    if os.environ.get("_RJEM_MALLOC_CONF"):
        log(f"note: _RJEM_MALLOC_CONF={os.environ['_RJEM_MALLOC_CONF']} is set: s360-sync's jemalloc follows it")
    d = work / f"reconcile-{rows}"
    d.mkdir(exist_ok=True)
    gen(d / "data", rows, days=1, extra=("--crm", "--discrepancies", "1000"))
    left = str(d / "data" / "orders_2026-10-13.csv")
    right = str(d / "data" / "crm" / "crm_orders.csv")
    # Parquet copies of the same data, written by DuckDB.
    lp, rp = str(d / "orders.parquet"), str(d / "crm.parquet")
    subprocess.run([sys.executable, "-c", (
        "import duckdb,sys;"
        f"duckdb.sql(\"COPY (SELECT * FROM read_csv('{left}', delim=';', header=true)) TO '{lp}' (FORMAT parquet)\");"
        f"duckdb.sql(\"COPY (SELECT * FROM read_csv('{right}', delim=';', header=true, all_varchar=true)) TO '{rp}' (FORMAT parquet)\")")],
        check=True)

    def tool(cmd, answer):
        t, m, o, _ = measure_rss(cmd)
        c = answer(o)
        return t, m, (c["missing_in_crm"], c["missing_in_s360"], c["mismatched"])

    # Some libraries print notices on stdout; the answer is the last JSON line.
    last_json_line = lambda o: json.loads([x for x in o.splitlines() if x.startswith('{')][-1])  # noqa: E731

    rows_out = []
    base_rows = []
    for fmt, (l, r) in (("csv", (left, right)), ("parquet", (lp, rp))):
        yaml = d / f"bench-{fmt}.yaml"
        yaml.write_text(PIPELINE.format(left=l, right=r))
        ours = lambda *extra: tool(  # noqa: E731
            [bin_path, "reconcile", str(yaml), "--out", str(d / f"out-{fmt}"), "--json", *extra],
            lambda o: json.loads(o)["counts"])
        base = lambda *extra: tool(  # noqa: E731
            [baseline, "reconcile", str(yaml), "--out", str(d / f"out-{fmt}-baseline"), "--json", *extra],
            lambda o: json.loads(o)["counts"])
        python = lambda script: tool([sys.executable, "-c", script, l, r], last_json_line)  # noqa: E731
        # All at once (the default when the exports fit in half the memory),
        # and in 8 partitions by key hash, through files on disk.
        runs = {"s360-sync": [], "s360-sync (8 parts)": [], "duckdb": []}
        if baseline:
            runs["baseline"] = []
            runs["baseline (8 parts)"] = []
        for _ in range(repeat):
            runs["s360-sync"].append(ours())
            if baseline:
                runs["baseline"].append(base())
            runs["s360-sync (8 parts)"].append(ours("--partitions", "8"))
            if baseline:
                runs["baseline (8 parts)"].append(base("--partitions", "8"))
            runs["duckdb"].append(python(DUCKDB))
        for name, script in (("polars (python)", POLARS), ("datacompy", DATACOMPY)):
            try:
                runs[name] = [python(script)]
            except RuntimeError as e:
                log(f"{name} on {fmt} failed: {str(e)[-300:]}")
        results = []
        for name, rs in runs.items():
            answers = {x[2] for x in rs}
            if len(answers) != 1:
                raise RuntimeError(f"{name} on {fmt} answered differently across runs: {answers}")
            times = sorted(x[0] for x in rs)
            mems = sorted(x[1] for x in rs)
            results.append((name, times[len(times) // 2], mems[len(mems) // 2], answers.pop(),
                            f"{times[0]:.1f}-{times[-1]:.1f}" if len(rs) > 1 else "-",
                            f"{mems[0]:.0f}-{mems[-1]:.0f}" if len(rs) > 1 else "-"))
        duck = next((x for x in results if x[0] == "duckdb"), None)
        if baseline:
            by_name = {x[0]: x for x in results}
            for mode in ("", " (8 parts)"):
                this, base_run = by_name[f"s360-sync{mode}"], by_name[f"baseline{mode}"]
                if this[3] != base_run[3]:
                    raise RuntimeError(f"{fmt}{mode}: this build and the baseline answered differently")
                base_rows.append([fmt, f"s360-sync{mode}", f"{base_run[1]:.2f}", f"{this[1]:.2f}",
                                  f"{base_run[1] / this[1]:.2f}", f"{this[2] / base_run[2]:.2f}"])
        for name, t, m, counts, spread, mem_spread in results:
            ratio_t = f"{duck[1] / t:.2f}" if duck else "-"
            ratio_m = f"{m / duck[2]:.2f}" if duck else "-"
            rows_out.append([fmt, name, f"{t:.1f}", spread, f"{m:.0f}", mem_spread, counts, ratio_t, ratio_m])
    table(
        f"reconcile: {rows} orders per side, medians of {repeat} interleaved runs",
        rows_out,
        ["format", "tool", "seconds", "range", "peak MiB", "range", "(missing crm, missing s360, mismatched)",
         "duckdb time / this", "this RSS / duckdb"],
    )
    if baseline:
        table(
            f"reconcile: this build against the baseline {baseline}, medians of {repeat} interleaved runs",
            base_rows,
            ["format", "mode", "baseline s", "this s", "baseline time / this", "this RSS / baseline"],
        )
