-- The two views of one lake table in lake/catalog.duckdb (customer_equity/catalog.py).
-- DuckDB takes no parameters in a view definition: $table and $latest arrive quoted as
-- identifiers, $files as a string literal (string.Template substitution by the caller).
create view $table as
select *
from read_parquet(
    $files,
    hive_partitioning = true,
    hive_types = {'as_of_date': 'DATE'},
    -- A column added by a later release is null in older partitions instead of an error.
    union_by_name = true
);

create view $latest as
select *
from $table
where as_of_date = (select max(as_of_date) from $table);
