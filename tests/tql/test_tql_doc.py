"""docs/tql.md: every python example runs (in this process, so a failure shows its line),
and every built-in function and operator appears in an example that runs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from lakeformat.tql.functions import builtin_names

DOC = Path(__file__).resolve().parents[2] / "docs" / "tql.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.mark.parametrize("k", range(len(BLOCKS)))
def test_doc_example_runs(k, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[k], f"docs/tql.md block {k}", "exec"), {"__name__": "__tql_doc__"})


def test_every_function_and_operator_has_a_running_example():
    code = "\n".join(BLOCKS).upper()
    missing = [f for f in builtin_names() if f + "(" not in code]
    assert not missing, missing
    for op in ["UNION", "INTERSECT", "EXCEPT", " IN (", "BETWEEN", " LIKE ", " ILIKE ", "IS NULL", "IS NOT NULL", "ORDER BY", "DESC", "LIMIT", "OFFSET", "PERCENT", "FROM (", "FROM \"", "EXPAND BY", "SAMPLE BY MAX_WEIGHT", "SUM_WEIGHT", "REPLACE FALSE", "ARRAY[", "[:, ", "::2", "['SOURCE']", " % ", " / ", " <> ", "NOT ", " OR "]:
        assert op in code, op
