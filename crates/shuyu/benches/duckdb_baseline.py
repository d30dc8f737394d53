"""DuckDB's side of `cargo bench -p shuyu --bench jobs`: the same analyses over the same plain
Parquet files, each run reading the files anew. Input (stdin, JSON): {"tables": {name: path},
"queries": [sql], "runs": n}. Output (stdout, JSON): [{"times": [seconds], "rows": cells}]."""

import json
import sys
import time

import duckdb

spec = json.load(sys.stdin)
con = duckdb.connect()
for name, path in spec["tables"].items():
    con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{path}')")
out = []
for sql in spec["queries"]:
    con.execute(sql).fetchall()  # warm the page cache and the planner
    times = []
    rows = 0
    for _ in range(spec["runs"]):
        t = time.perf_counter()
        rows = len(con.execute(sql).fetchall())
        times.append(time.perf_counter() - t)
    out.append({"times": times, "rows": rows})
json.dump(out, sys.stdout)
