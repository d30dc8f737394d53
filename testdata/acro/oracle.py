"""Regenerate oracle.json: what ACRO itself says about each case.

Each case pairs an ACRO call with the SQL that computes the same table. The Rust
parity test (crates/engine/tests/it/acro.rs; `shuyu gate check` in crates/shuyu/tests/it/gate.rs) runs the SQL through the gate and
compares verdicts and flagged cells with what ACRO recorded here.

Run (needs network once):  python3 -m venv /tmp/acro && /tmp/acro/bin/pip install acro==1.0.2
                           /tmp/acro/bin/python oracle.py > oracle.json
"""

import json
import logging
import sys

import pandas as pd
import statsmodels.api as sm
from importlib.metadata import version

from acro import ACRO

ACRO_VERSION = version("acro")

logging.disable(logging.CRITICAL)
HERE = sys.path[0]
df = pd.read_csv(f"{HERE}/test_data.csv")
neg = df.copy()
neg.loc[0:10, "inc_grants"] = -10  # ACRO's own negative-values test

CHECKS = {
    "MinimumThresholdCheck": "threshold",
    "PresenceOfZeroCheck": "zeros",
    "NKCheck": "nk-dominance",
    "PPercentCheck": "p-percent",
    "MinimumDoFCheck": "residual-dof",
}


def label(v):
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def table_case(name, table_name, sql, call):
    acro = ACRO(suppress=False)
    table = call(acro)
    out = acro.results.get_index(-1)
    rows = list(table.index)
    cols = list(table.columns)
    rnames = list(table.index.names)
    cnames = list(table.columns.names)
    checks = {}
    for acro_name, cells in out.sdc["cells"].items():
        if acro_name not in CHECKS:
            continue
        flagged = []
        for r, c in cells:
            rv = rows[r] if isinstance(rows[r], tuple) else (rows[r],)
            keys = {n: label(v) for n, v in zip(rnames, rv)}
            column = None
            cv = cols[c] if isinstance(cols[c], tuple) else (cols[c],)
            if cnames and cnames[0] is not None and cnames[0] not in (None,):
                # a crosstab: the columns are a dimension of the table
                keys.update({n: label(v) for n, v in zip(cnames, cv)})
            else:
                # a pivot table: the columns are the aggregates, by name
                column = str(cv[0])
            flagged.append({"keys": keys, "column": column})
        checks[CHECKS[acro_name]] = {
            "result": check_result(out.summary, acro_name),
            "cells": sorted(flagged, key=lambda f: json.dumps(f, sort_keys=True)),
        }
    return {"name": name, "table": table_name, "sql": sql, "verdict": out.status, "checks": checks}


def check_result(summary, acro_name):
    """The check's own status, read from ACRO's summary line for it."""
    if f"{acro_name}:" not in summary:
        return None  # not in ACRO's summary: the result follows from the cells
    rest = summary.split(f"{acro_name}:", 1)[1]
    for other in CHECKS.keys() | {"PresenceOfLinkedTableCheck", "RequiredZeroCheck"}:
        rest = rest.split(f"{other}:", 1)[0]
    if "negative" in rest:
        return "review"
    return "fail" if rest.strip().startswith("fail") else "pass"


def ols_case(name, table_name, sql, frame, y, x):
    acro = ACRO(suppress=False)
    frame = frame[[y, x]].dropna()
    acro.ols(frame[y], sm.add_constant(frame[[x]]))
    out = acro.results.get_index(-1)
    return {"name": name, "table": table_name, "sql": sql, "verdict": out.status,
            "dof": int(len(frame) - 2)}


G = "FROM charities GROUP BY year, grant_type"
cases = [
    table_case("crosstab count", "charities", f"SELECT year, grant_type, COUNT(*) AS n {G}",
               lambda a: a.crosstab(df.year, df.grant_type)),
    table_case("crosstab mean", "charities", f"SELECT year, grant_type, AVG(inc_grants) AS mean {G}",
               lambda a: a.crosstab(df.year, df.grant_type, values=df.inc_grants, aggfunc="mean")),
    table_case("crosstab sum", "charities", f"SELECT year, grant_type, SUM(inc_grants) AS total {G}",
               lambda a: a.crosstab(df.year, df.grant_type, values=df.inc_grants, aggfunc="sum")),
    table_case("crosstab sum by survivor", "charities",
               "SELECT year, survivor, SUM(inc_grants) AS total FROM charities GROUP BY year, survivor",
               lambda a: a.crosstab(df.year, df.survivor, values=df.inc_grants, aggfunc="sum")),
    table_case("crosstab median", "charities", f"SELECT year, grant_type, MEDIAN(inc_grants) AS median {G}",
               lambda a: a.crosstab(df.year, df.grant_type, values=df.inc_grants, aggfunc="median")),
    table_case("crosstab max", "charities", f"SELECT year, grant_type, MAX(inc_grants) AS max {G}",
               lambda a: a.crosstab(df.year, df.grant_type, values=df.inc_grants, aggfunc="max")),
    table_case("crosstab count, 2015 only", "charities",
               "SELECT status, grant_type, COUNT(*) AS n FROM charities WHERE year = 2015 GROUP BY status, grant_type",
               lambda a: a.crosstab(df[df.year == 2015].status, df[df.year == 2015].grant_type)),
    table_case("pivot mean and sum", "charities",
               "SELECT grant_type, AVG(inc_grants) AS mean, SUM(inc_grants) AS sum FROM charities "
               "WHERE inc_grants IS NOT NULL GROUP BY grant_type",
               lambda a: a.pivot_table(df, index=["grant_type"], values=["inc_grants"], aggfunc=["mean", "sum"])),
    table_case("pivot sum by year and type", "charities",
               "SELECT year, grant_type, SUM(inc_grants) AS inc_grants FROM charities "
               "WHERE inc_grants IS NOT NULL GROUP BY year, grant_type",
               lambda a: a.pivot_table(df, index=["year", "grant_type"], values=["inc_grants"], aggfunc="sum")),
    table_case("crosstab mean with negatives", "charities_negative",
               "SELECT year, grant_type, AVG(inc_grants) AS mean FROM charities_negative GROUP BY year, grant_type",
               lambda a: a.crosstab(neg.year, neg.grant_type, values=neg.inc_grants, aggfunc="mean")),
    table_case("pivot mean with negatives", "charities_negative",
               "SELECT grant_type, AVG(inc_grants) AS mean FROM charities_negative "
               "WHERE inc_grants IS NOT NULL GROUP BY grant_type",
               lambda a: a.pivot_table(neg, index=["grant_type"], values=["inc_grants"], aggfunc=["mean"])),
    ols_case("ols all years", "charities",
             "SELECT regr_slope(inc_activity, inc_grants) AS slope, regr_intercept(inc_activity, inc_grants) "
             "AS intercept, regr_count(inc_activity, inc_grants) AS n FROM charities",
             df, "inc_activity", "inc_grants"),
    ols_case("ols one small cell", "charities",
             "SELECT regr_slope(inc_activity, inc_grants) AS slope, regr_intercept(inc_activity, inc_grants) "
             "AS intercept FROM charities WHERE year = 2010 AND grant_type = 'R/G'",
             df[(df.year == 2010) & (df.grant_type == "R/G")], "inc_activity", "inc_grants"),
]
print(json.dumps({"acro_version": ACRO_VERSION, "cases": cases}, indent=1, ensure_ascii=False))
