-- Applies `classified` (contested keys) and the uncontested rest of `batch` to the
-- current table {table} and its audit table {audit}.
-- {table} and {audit} are identifiers from the fixed schemas; values are parameters.

-- Stored versions that a later version replaced: to the audit table, out of the current one.
insert into {audit} by name
select
    s.*,
    $run_id as _replaced_by_run,
    $now as _replaced_at
from {table} as s
where s._key in (select _key from classified where is_stored and to_audit);

delete from {table}
where _key in (select _key from classified where is_stored and to_audit);

-- Versions of this load that a later one replaced: superseded on arrival.
insert into {audit} by name
select
    b.*,
    $run_id as _run_id,
    $now as _loaded_at,
    $run_id as _replaced_by_run,
    $now as _replaced_at
from batch as b
inner join classified as c
    on
        b._key = c._key
        and b._file = c._file
        and b._arrived_at = c._arrived_at
        and b._line = c._line
where not c.is_stored and c.to_audit;

-- The winning versions of contested keys, then every uncontested row.
insert into {table} by name
select
    b.*,
    $run_id as _run_id,
    $now as _loaded_at
from batch as b
inner join classified as c
    on
        b._key = c._key
        and b._file = c._file
        and b._arrived_at = c._arrived_at
        and b._line = c._line
where not c.is_stored and c.to_current;

insert into {table} by name
select
    b.*,
    $run_id as _run_id,
    $now as _loaded_at
from batch as b
anti join contested as c on b._key = c._key;
