"""The BI catalog `lake/catalog.duckdb`: views over the Parquet lake for tools that attach it.

For every lake table `<table>` the catalog holds two views:
- `<table>`: every published as-of date, `as_of_date` a DATE column;
- `latest_<table>`: only the newest as-of date of that table.

The views read the Parquet files at query time, so a partition published
after the catalog was built shows up at once; the catalog is rebuilt by every
run (new tables appear) and replaced in one rename, so a BI tool that has it
attached keeps a consistent file. It holds no data and no lock of the
warehouse: any number of readers attach it read-only
(`ATTACH 'lake/catalog.duckdb' AS lake (READ_ONLY)`). Paths inside the views
are absolute: move the lake, and the next run rebuilds them.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from string import Template

import duckdb

from customer_equity import lake
from customer_equity.warehouse import quote, sql_text

CATALOG_NAME = "catalog.duckdb"
LATEST_PREFIX = "latest_"


def catalog_path(lake_root: Path) -> Path:
    return lake_root / CATALOG_NAME


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def build_catalog(lake_root: Path) -> Path:
    """(Re)write `lake/catalog.duckdb` with the views of every table in the lake; returns it."""
    final = catalog_path(lake_root)
    building = lake_root / f".catalog-{uuid.uuid4().hex}.duckdb"
    views = Template(sql_text("catalog/table_views"))
    try:
        con = duckdb.connect(str(building))
        try:
            for table in lake.table_names(lake_root):
                files = (lake_root.resolve() / table / "*" / "*.parquet").as_posix()
                con.execute(
                    views.substitute(
                        table=quote(table),
                        latest=quote(LATEST_PREFIX + table),
                        files=_literal(files),
                    )
                )
        finally:
            con.close()
        building.replace(final)
    finally:
        building.unlink(missing_ok=True)
        building.with_name(building.name + ".wal").unlink(missing_ok=True)
    return final
