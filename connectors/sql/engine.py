"""The backfill engine: plan the tensors, stream the source in batches, write, resume, commit.

Reading: SQLAlchemy 2 Core, one SELECT per partition with server-side cursors
(`stream_results=True, yield_per=batch_size`), ordered by the primary key (or the cursor when
there is no key) so that a position can be recorded and resumed from. Rows become columns per
batch (`zip(*rows)`, then NumPy) and are written with one `ds.extend` per batch.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue as queue_mod
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from connectors.sql import state as S
from connectors.redaction import redact_url as _redact_url, scrub, url_secrets
from connectors.sql.spec import SourceSpec
from connectors.sql.writing import Converted, KeyIndex, convert_until_bad, ensure_tensors, write_batch
from connectors.sql.errors import (
    DriverNotInstalledError,
    SourceConfigError,
    SourceConnectionError,
    SourceNotFoundError,
    SqlIngestError,
    StateMismatchError,
    ValueMappingError,
)
from connectors.sql.types import (
    DECIMAL_MODES,
    ColumnPlan,
    apply_override,
    plan_for_sa_type,
    plan_from_values,
    tensor_name_for,
)
from lakeformat.htypes import is_link_htype

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 10_000
_PROBE_ROWS = 500


@dataclass
class BackfillReport:
    """What one `backfill` run did."""

    rows: int = 0  # source rows read and written (appended + updated)
    appended: int = 0
    updated: int = 0
    nulled: Dict[str, int] = field(default_factory=dict)  # column -> values nulled (--on-error null)
    bytes: int = 0  # uncompressed bytes of the values written
    seconds: float = 0.0
    commit_id: Optional[str] = None
    cursor_low: Any = None
    cursor_high: Any = None
    resumed: bool = False
    partitions: int = 1
    dataset_length: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["cursor_low"] = S.display_value(S.encode_value(self.cursor_low)) if self.cursor_low is not None else None
        d["cursor_high"] = S.display_value(S.encode_value(self.cursor_high)) if self.cursor_high is not None else None
        d["rows_per_second"] = round(self.rows_per_second, 1)
        return d


@dataclass
class Plan:
    """The planned tensors of a backfill (what `--dry-run` prints)."""

    columns: List[ColumnPlan]
    primary_key: List[str]
    cursor_field: Optional[str]
    source: Dict[str, Any]

    def lines(self) -> List[str]:
        out = [f"source: {self.source.get('url')} " + (f"table {self.source.get('table')}" if self.source.get("table") else f"query {self.source.get('query')!r}")]
        out.append(f"primary key: {', '.join(self.primary_key) or '(none)'}; cursor: {self.cursor_field or '(none)'}")
        out.extend("  " + c.describe() for c in self.columns)
        return out


# ------------------------------------------------------------------------------------ source
def redact_url(url: str) -> str:
    """The URL without its password (dropped, not masked) and with every secret-bearing query
    parameter (password, sslpassword, token, ...) masked: what lineage and messages show."""
    return _redact_url(url)


def _scrub(text: str, url: str) -> str:
    """`text` with every secret of `url` (its password, secret query values) masked."""
    return scrub(text, url_secrets(url))


# the package that provides each DBAPI module SQLAlchemy's dialects import (where the two differ)
_DRIVER_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "pymysql": "PyMySQL",
    "MySQLdb": "mysqlclient",
    "mysql": "mysql-connector-python",
    "cx_Oracle": "cx-Oracle",
}


def require_sqlalchemy():
    """The `sqlalchemy` module; DriverNotInstalledError when the `sql` extra is not installed."""
    try:
        import sqlalchemy
    except ModuleNotFoundError as e:
        if e.name != "sqlalchemy":
            raise
        raise DriverNotInstalledError(
            "SQL backfills need SQLAlchemy, which is not installed: pip install 'airbyte-destination-deeplake[sql]'",
            name="sqlalchemy",
        ) from None
    return sqlalchemy


def make_engine(url: str):
    """sa.create_engine(url), with a typed error for a bad URL or a driver that is not installed."""
    sa = require_sqlalchemy()
    try:
        return sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as e:
        raise SourceConfigError(f"bad database URL {redact_url(url)!r}: {_scrub(str(e), url)}") from None
    except ModuleNotFoundError as e:
        # the dialect imports its DBAPI module on create_engine: drivers are the user's choice
        module = (e.name or "").split(".")[0]
        package = _DRIVER_PACKAGES.get(module, module)
        raise DriverNotInstalledError(
            f"the database driver {e.name!r} for {redact_url(url)!r} is not installed: pip install {package!r}",
            name=module,
        ) from None


def connect(engine, url: str):
    """engine.connect(), with errors that say what is wrong and never show the password."""
    import sqlalchemy as sa

    try:
        return engine.connect()
    except sa.exc.DBAPIError as e:
        raise _connection_error(e, url) from None


def _connection_error(e: Exception, url: str) -> SqlIngestError:
    import sqlalchemy as sa

    u = sa.engine.make_url(url)
    msg = _scrub(str(getattr(e, "orig", e)).strip().splitlines()[0] if str(getattr(e, "orig", e)).strip() else type(e).__name__, url)
    low = msg.lower()
    where = f"{u.drivername}://{u.host or ''}{':' + str(u.port) if u.port else ''}/{u.database or ''}"
    if "password" in low or "access denied" in low or "authentication" in low:
        return SourceConnectionError(f"login refused for user {u.username!r} at {where}: wrong user or password ({msg})")
    if ("database" in low and ("does not exist" in low or "unknown" in low)) or "unable to open database" in low:
        return SourceNotFoundError(f"database {u.database!r} not found at {where} ({msg})")
    return SourceConnectionError(f"cannot connect to {where}: {msg}")


def _reflect_table(conn, table: str, schema: Optional[str]):
    import sqlalchemy as sa

    try:
        t = sa.Table(table, sa.MetaData(), schema=schema, autoload_with=conn)
        for c in t.columns:
            # MySQL's DOUBLE/FLOAT reflect as asdecimal=True, which rounds to 10 digits
            if isinstance(c.type, sa.Float) and getattr(c.type, "asdecimal", False):
                c.type = c.type.copy()
                c.type.asdecimal = False
        return t
    except sa.exc.NoSuchTableError:
        where = f"{schema}.{table}" if schema else table
        raise SourceNotFoundError(f"table {where!r} not found in {redact_url(str(conn.engine.url))}" + (f" (is schema {schema!r} right?)" if schema else "")) from None
    except sa.exc.DBAPIError as e:
        raise _connection_error(e, str(conn.engine.url)) from None


def _query_text(query: str) -> str:
    return query.strip().rstrip(";").strip()


def source_selectable(conn, spec: SourceSpec) -> tuple:
    """(from-clause, {column name: column}) for a table or a query."""
    import sqlalchemy as sa

    if spec.table:
        t = _reflect_table(conn, spec.table, spec.schema)
        return t, {c.name: c for c in t.columns}
    sub = sa.text(_query_text(spec.query)).columns(*[sa.column(n) for n in spec.columns]).subquery("_lf_q")
    return sub, {c.name: c for c in sub.columns}


def _query_columns(conn, query: str) -> List[str]:
    import sqlalchemy as sa

    try:
        res = conn.execute(sa.text(f"SELECT * FROM ({_query_text(query)}) AS _lf_q WHERE 1 = 0"))
        names = list(res.keys())
        res.close()
        return names
    except sa.exc.DBAPIError as e:
        conn.rollback()
        raise SourceConfigError(f"the query fails: {_scrub(str(getattr(e, 'orig', e)).strip().splitlines()[0], str(conn.engine.url))}") from None


# ------------------------------------------------------------------------------------ planning
def plan_backfill(
    url: str,
    *,
    table: Optional[str] = None,
    schema: Optional[str] = None,
    query: Optional[str] = None,
    primary_key: Optional[Sequence[str]] = None,
    cursor_field: Optional[str] = None,
    link_columns: Optional[Mapping[str, str]] = None,
    tensors: Optional[Mapping[str, str]] = None,
    decimal: str = "auto",
) -> Plan:
    """Connect, reflect (or probe the query) and map every column to a tensor."""
    import sqlalchemy as sa

    if (table is None) == (query is None):
        raise SourceConfigError("give a table or a query, not both and not neither")
    if decimal not in DECIMAL_MODES:
        raise SourceConfigError(f"decimal must be one of {DECIMAL_MODES}, not {decimal!r}")
    engine = make_engine(url)
    try:
        with connect(engine, url) as conn:
            dialect = engine.dialect.name
            if table:
                t = _reflect_table(conn, table, schema)
                plans = [plan_for_sa_type(c.name, c.type, dialect=dialect, decimal_mode=decimal) for c in t.columns]
                reflected_pk = [c.name for c in t.primary_key.columns]
                names = [c.name for c in t.columns]
                from_, cols = t, {c.name: c for c in t.columns}
            else:
                names = _query_columns(conn, query)
                plans = [ColumnPlan(n, tensor_name_for(n), "infer") for n in names]
                reflected_pk = []
                from_, cols = source_selectable(conn, SourceSpec(url, None, None, query, names, [], None))
            if any(p.kind == "infer" for p in plans):
                probe = conn.execute(sa.select(*[cols[n] for n in names]).select_from(from_).limit(_PROBE_ROWS)).fetchall()
                by_col = list(zip(*probe)) if probe else [() for _ in names]
                for i, p in enumerate(plans):
                    if p.kind == "infer":
                        q = plan_from_values(p.source, by_col[i], decimal_mode=decimal)
                        if p.sql_type and p.sql_type != "(inferred)":
                            q.sql_type = p.sql_type
                        plans[i] = q
    finally:
        engine.dispose()
    by_name = {p.source: p for p in plans}
    for what, mapping in (("--tensor", tensors or {}), ("--link-column", link_columns or {})):
        for col, spec in mapping.items():
            if col not in by_name:
                raise SourceConfigError(f"{what} {col}=...: no column {col!r} in the source (columns: {', '.join(names)})")
            by_name[col] = apply_override(by_name[col], spec if what == "--tensor" else (spec if is_link_htype(spec) else f"link[{spec}]"))
    plans = [by_name[n] for n in names]
    taken: List[str] = []
    for p in plans:
        p.tensor = tensor_name_for(p.source, taken)
        taken.append(p.tensor)
    pk = list(primary_key) if primary_key else reflected_pk
    for c in pk + ([cursor_field] if cursor_field else []):
        if c not in by_name:
            raise SourceConfigError(f"no column {c!r} in the source (columns: {', '.join(names)})")
    source = {"url": redact_url(url), "table": table, "schema": schema, "query": _query_text(query) if query else None}
    return Plan(plans, pk, cursor_field, source)


# ------------------------------------------------------------------------------------ reading
def _where_clauses(cols: Dict[str, Any], spec: SourceSpec, run: Dict[str, Any], part: Dict[str, Any]) -> List[Any]:
    import sqlalchemy as sa

    out = []
    if spec.cursor_field:
        c = cols[spec.cursor_field]
        low, high = S.decode_value(run.get("low")), S.decode_value(run.get("high"))
        if low is not None:
            out.append(c > low)
        if high is not None:
            out.append(c <= high)
        else:
            out.append(sa.false())  # nothing has a cursor value yet
    if part.get("lo") is not None:
        out.append(cols[spec.primary_key[0]] >= S.decode_value(part["lo"]))
    if part.get("hi") is not None:
        out.append(cols[spec.primary_key[0]] < S.decode_value(part["hi"]))
    pos = S.decode_value(part.get("position"))
    if pos is not None:
        if spec.primary_key:
            if len(spec.primary_key) == 1:
                out.append(cols[spec.primary_key[0]] > pos[0])
            else:
                out.append(sa.tuple_(*[cols[k] for k in spec.primary_key]) > sa.tuple_(*[sa.literal(v) for v in pos]))
        elif spec.cursor_field:
            out.append(cols[spec.cursor_field] > pos[0])
    return out


def read_batches(spec: SourceSpec, run: Dict[str, Any], part: Dict[str, Any], batch_size: int) -> Iterator[List[Any]]:
    """Stream the rows of one partition after its position, in order, `batch_size` at a time.
    When the order is not unique (a cursor without a key), a batch never ends inside a run of
    equal cursor values, so that the position recorded after it is exact."""
    import sqlalchemy as sa

    engine = make_engine(spec.url)
    try:
        with connect(engine, spec.url) as conn:
            from_, cols = source_selectable(conn, spec)
            stmt = sa.select(*[cols[n] for n in spec.columns]).select_from(from_)
            where = _where_clauses(cols, spec, run, part)
            if where:
                stmt = stmt.where(sa.and_(*where))
            order = spec.order_columns()
            if order:
                stmt = stmt.order_by(*[cols[n] for n in order])
            try:
                result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(stmt)
            except sa.exc.DBAPIError as e:
                raise _connection_error(e, spec.url) if isinstance(e, sa.exc.OperationalError) else SourceConfigError(f"reading the source failed: {_scrub(str(getattr(e, 'orig', e)).strip().splitlines()[0], spec.url)}") from None
            unique = bool(spec.primary_key)
            ci = spec.columns.index(spec.cursor_field) if spec.cursor_field and not unique else None
            held: List[Any] = []
            for rows in result.partitions(batch_size):
                if ci is None:
                    yield rows
                    continue
                held.extend(rows)
                k = len(held)
                last = held[-1][ci]
                while k > 0 and held[k - 1][ci] == last:
                    k -= 1
                if k > 0:
                    yield held[:k]
                    held = held[k:]
            if held:
                yield held
    finally:
        engine.dispose()


def _source_bounds(spec: SourceSpec, low: Any, partitions: int) -> Tuple[Any, List[Dict[str, Any]]]:
    """The run's cursor high bound and its partitions (primary-key ranges)."""
    import sqlalchemy as sa

    engine = make_engine(spec.url)
    try:
        with connect(engine, spec.url) as conn:
            from_, cols = source_selectable(conn, spec)
            high = None
            if spec.cursor_field:
                c = cols[spec.cursor_field]
                q = sa.select(sa.func.max(c)).select_from(from_)
                if low is not None:
                    q = q.where(c > low)
                high = conn.execute(q).scalar()
            parts: List[Dict[str, Any]] = [{"lo": None, "hi": None, "position": None, "done": False}]
            if partitions > 1:
                k = cols[spec.primary_key[0]]
                q = sa.select(sa.func.min(k), sa.func.max(k)).select_from(from_)
                if spec.cursor_field:
                    c = cols[spec.cursor_field]
                    conds = [c <= high] if high is not None else [sa.false()]
                    if low is not None:
                        conds.append(c > low)
                    q = q.where(sa.and_(*conds))
                lo, hi = conn.execute(q).one()
                if lo is not None:
                    lo, hi = int(lo), int(hi)
                    edges = np.linspace(lo, hi + 1, partitions + 1).round().astype(np.int64).tolist()
                    edges = sorted(set(edges))
                    parts = []
                    for i in range(len(edges) - 1):
                        parts.append({"lo": edges[i] if i else None, "hi": edges[i + 1] if i < len(edges) - 2 else None, "position": None, "done": False})
            return high, parts
    finally:
        engine.dispose()


def _commit_message(source: Dict[str, Any], spec: SourceSpec, run: Dict[str, Any], report: BackfillReport) -> str:
    what = f"table {source['schema'] + '.' if source.get('schema') else ''}{source['table']}" if source.get("table") else f"query {source['query'][:300]!r}"
    msg = f"sql backfill from {source['url']} {what}"
    if spec.cursor_field:
        low = S.display_value(run.get("low")) if run.get("low") is not None else "-inf"
        high = S.display_value(run.get("high")) if run.get("high") is not None else low
        msg += f"; cursor {spec.cursor_field} in ({low}, {high}]"
    msg += f"; {report.rows} rows ({report.appended} appended, {report.updated} updated)"
    if report.nulled:
        msg += f"; nulled {report.nulled}"
    if report.resumed:
        msg += "; resumed"
    return msg


def backfill(
    url: str,
    dest: str,
    *,
    table: Optional[str] = None,
    schema: Optional[str] = None,
    query: Optional[str] = None,
    primary_key: Optional[Sequence[str] | str] = None,
    cursor_field: Optional[str] = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    partitions: int = 1,
    link_columns: Optional[Mapping[str, str]] = None,
    tensors: Optional[Mapping[str, str]] = None,
    decimal: str = "auto",
    on_error: str = "fail",
    creds: Optional[Dict[str, Any]] = None,
    progress: bool = False,
) -> BackfillReport:
    """Backfill a table or query of any SQLAlchemy database into the lake at `dest`, or bring
    it up to date: with `cursor_field`, only rows past the cursor of the last run are read;
    with a primary key (given, or the table's own), rows already in the lake are replaced
    in place (latest wins). A killed run resumes from its last flushed batch. Each run ends in
    one commit.

    >>> from connectors.sql import backfill                                  # doctest: +SKIP
    >>> r = backfill("postgresql+psycopg://me@db/shop", "./lake/items",        # doctest: +SKIP
    ...              table="items", cursor_field="updated_at")
    >>> r.rows, r.commit_id                                                   # doctest: +SKIP
    """
    import lakeformat

    t0 = time.perf_counter()
    if on_error not in ("fail", "null"):
        raise SourceConfigError(f"on_error is 'fail' or 'null', not {on_error!r}")
    if batch_size < 1 or partitions < 1:
        raise SourceConfigError("batch_size and partitions must be positive")
    if isinstance(primary_key, str):
        primary_key = [k.strip() for k in primary_key.split(",") if k.strip()]
    plan = plan_backfill(url, table=table, schema=schema, query=query, primary_key=primary_key, cursor_field=cursor_field, link_columns=link_columns, tensors=tensors, decimal=decimal)
    if partitions > 1:
        if len(plan.primary_key) != 1:
            raise SourceConfigError("--partitions needs a single-column primary key (give --primary-key)")
        kp = next(p for p in plan.columns if p.source == plan.primary_key[0])
        if kp.kind != "int":
            raise SourceConfigError(f"--partitions splits by integer key ranges; {kp.source!r} is {kp.sql_type}")

    ds = lakeformat.dataset(dest, creds=creds)
    report = BackfillReport(partitions=partitions)
    with ds:
        st = S.read_state(ds)
        if st is None:
            if len(ds.meta.tensor_names):
                raise StateMismatchError(f"{dest!r} already holds tensors that no SQL backfill wrote; use a new destination")
            plans = plan.columns
            st = {"version": S.STATE_VERSION, "source": plan.source, "primary_key": plan.primary_key, "cursor_field": plan.cursor_field, "columns": [p.to_dict() for p in plans], "cursor": None, "run": None}
            ensure_tensors(ds, plans)
        else:
            same = all(st["source"].get(k) == plan.source.get(k) for k in ("table", "schema", "query"))
            if not same:
                raise StateMismatchError(f"{dest!r} is a backfill of {st['source']}, not of {plan.source}")
            if st.get("cursor_field") != plan.cursor_field or list(st.get("primary_key") or []) != list(plan.primary_key):
                raise StateMismatchError(f"{dest!r} was backfilled with primary key {st.get('primary_key')} and cursor {st.get('cursor_field')!r}; this run asks for {plan.primary_key} and {plan.cursor_field!r}")
            if st["source"].get("url") != plan.source["url"]:
                logger.warning("source URL changed from %s to %s", st["source"].get("url"), plan.source["url"])
            plans = [ColumnPlan.from_dict(d) for d in st["columns"]]
            known = {p.source for p in plans}
            extra = [p.source for p in plan.columns if p.source not in known]
            if extra:
                logger.warning("columns %s are new in the source and are not ingested (backfill into a new destination to add them)", extra)
            missing = [p.source for p in plans if p.source not in {q.source for q in plan.columns}]
            if missing:
                raise StateMismatchError(f"columns {missing} were ingested before but are gone from the source")
            ensure_tensors(ds, plans)
        spec = SourceSpec(url, table, schema, query, [p.source for p in plans], list(plan.primary_key), plan.cursor_field)

        run = st.get("run")
        if run is not None:
            report.resumed = True
            S.truncate(ds, int(run["rows"]))
            if not spec.primary_key and not spec.cursor_field and run["rows"] != run["rows_at_start"]:
                # no order to resume by: start the run again from its beginning
                S.truncate(ds, int(run["rows_at_start"]))
                run["rows"] = run["rows_at_start"]
                run["parts"] = [{"lo": None, "hi": None, "position": None, "done": False}]
        else:
            low = S.decode_value(st.get("cursor"))
            high, parts = _source_bounds(spec, low, partitions)
            run = {"low": S.encode_value(low), "high": S.encode_value(high), "rows_at_start": len(ds), "rows": len(ds), "parts": parts, "read": 0, "appended": 0, "updated": 0, "nulled": {}, "bytes": 0}
            st["run"] = run
            S.write_state(ds, st)
            ds.flush()
        report.cursor_low = S.decode_value(run.get("low"))
        report.cursor_high = S.decode_value(run.get("high"))
        index = KeyIndex(ds, [next(p.tensor for p in plans if p.source == k) for k in spec.primary_key], int(run["rows"])) if spec.primary_key else None

        bar = _progress_bar(spec, run, progress)
        failure: Optional[ValueMappingError] = None

        def apply(pi: int, conv: Converted, err: Optional[ValueMappingError]) -> None:
            nonlocal failure
            appended, updated = write_batch(ds, plans, conv, index)
            part = run["parts"][pi]
            if conv.last_position is not None:
                part["position"] = S.encode_value(conv.last_position)
            run["rows"] = int(run["rows"]) + appended
            run["read"] += conv.n
            run["appended"] += appended
            run["updated"] += updated
            run["bytes"] += conv.nbytes
            for k, v in conv.nulled.items():
                run["nulled"][k] = run["nulled"].get(k, 0) + v
            S.write_state(ds, st)
            ds.flush()  # tensors first, then the state: see connectors.sql.state
            _fault_point()
            if bar is not None:
                bar.update(conv.n)
            if err is not None:
                failure = err

        try:
            todo = [i for i, p in enumerate(run["parts"]) if not p.get("done")]
            if partitions > 1 and len(todo) > 1:
                _run_parallel(spec, plans, run, todo, batch_size, on_error, apply)
            else:
                for pi in todo:
                    for rows in read_batches(spec, run, run["parts"][pi], batch_size):
                        conv, err = convert_until_bad(rows, plans, spec, on_error)
                        apply(pi, conv, err)
                        if failure is not None:
                            break
                    if failure is not None:
                        break
                    run["parts"][pi]["done"] = True
                    S.write_state(ds, st)
                    ds.flush()
        finally:
            if bar is not None:
                bar.close()
        if failure is not None:
            raise failure

        report.rows = run["read"]
        report.appended = run["appended"]
        report.updated = run["updated"]
        report.nulled = dict(run["nulled"])
        report.bytes = run["bytes"]
        if run.get("high") is not None:
            st["cursor"] = run["high"]
        st["last_run"] = {k: run[k] for k in ("low", "high", "read", "appended", "updated", "nulled")}
        st["run"] = None
        report.dataset_length = len(ds)
        S.write_state(ds, st)
        ds.flush()
        report.seconds = time.perf_counter() - t0
        ds.commit(_commit_message(plan.source, spec, run, report), allow_empty=True)
        report.commit_id = ds.commit_id
    report.seconds = time.perf_counter() - t0
    return report


def _progress_bar(spec: SourceSpec, run: Dict[str, Any], enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(unit=" rows", unit_scale=True, desc="sql backfill", file=sys.stderr, dynamic_ncols=True, initial=int(run.get("read", 0)))


def _fault_point() -> None:
    """Test hook: LAKEFORMAT_SQL_KILL_AFTER_BATCHES=N kills the process (SIGKILL) after the
    Nth flushed batch, as a crash would."""
    import os

    n = os.environ.get("LAKEFORMAT_SQL_KILL_AFTER_BATCHES")
    if not n:
        return
    _fault_point.count = getattr(_fault_point, "count", 0) + 1  # type: ignore[attr-defined]
    if _fault_point.count >= int(n):  # type: ignore[attr-defined]
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


# ------------------------------------------------------------------------------------ partitions
def _exit_with_writer(writer: int) -> None:
    """A partition worker follows its writer (process id `writer`, its parent): a writer
    killed outright (SIGKILL, OOM) runs no cleanup, and the worker would block forever on the
    queue nobody reads (or, at exit, on flushing it). A daemon thread exits the worker once
    its parent is no longer the writer (it may be gone before the worker has even started)."""
    import threading

    def watch() -> None:
        while os.getppid() == writer:
            time.sleep(0.25)
        os._exit(1)

    threading.Thread(target=watch, name="lakeformat-writer-watch", daemon=True).start()


def _partition_worker(pi: int, spec: SourceSpec, plans_d: List[Dict[str, Any]], run: Dict[str, Any], part: Dict[str, Any], batch_size: int, on_error: str, out,
                      writer: int) -> None:
    _exit_with_writer(writer)
    plans = [ColumnPlan.from_dict(d) for d in plans_d]
    try:
        for rows in read_batches(spec, run, part, batch_size):
            conv, err = convert_until_bad(rows, plans, spec, on_error)
            out.put(("batch", pi, conv, err))
            if err is not None:
                return
        out.put(("done", pi, None, None))
    except BaseException as e:  # noqa: BLE001 - report every failure to the writer
        msg = str(e) if isinstance(e, SqlIngestError) else f"{type(e).__name__}: {e}"
        out.put(("error", pi, type(e).__name__, msg))


def _run_parallel(spec: SourceSpec, plans: List[ColumnPlan], run: Dict[str, Any], todo: List[int], batch_size: int, on_error: str, apply) -> None:
    """Read and convert the partitions in worker processes; this process alone writes."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue(maxsize=2 * len(todo))
    procs = {}
    plans_d = [p.to_dict() for p in plans]
    for pi in todo:
        p = ctx.Process(target=_partition_worker, args=(pi, spec, plans_d, run, run["parts"][pi], batch_size, on_error, out, os.getpid()), daemon=True)
        p.start()
        procs[pi] = p
    active = set(todo)
    try:
        while active:
            try:
                kind, pi, a, b = out.get(timeout=5)
            except queue_mod.Empty:
                dead = [i for i in active if not procs[i].is_alive()]
                if dead:
                    raise SqlIngestError(f"partition worker(s) {dead} died without a word") from None
                continue
            if kind == "batch":
                apply(pi, a, b)
                if b is not None:
                    return
            elif kind == "done":
                run["parts"][pi]["done"] = True
                active.discard(pi)
            else:
                raise _rebuild_error(a, b)
    finally:
        for p in procs.values():
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)


def _rebuild_error(name: str, msg: str) -> SqlIngestError:
    for cls in (SourceConnectionError, SourceNotFoundError, SourceConfigError, StateMismatchError):
        if cls.__name__ == name:
            return cls(msg)
    return SqlIngestError(f"a partition failed: {msg}")
