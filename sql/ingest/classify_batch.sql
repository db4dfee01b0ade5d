-- Classifies the rows of one load (`batch`: one file, or rows released from the
-- quarantine) against the stored version of their key (`stored_version`, the current table).
--
-- Versions of a key are ordered by (source file name, arrival, line): the
-- version from the file that sorts last wins whatever the arrival order (SPEC §2),
-- and between two deliveries under one name the later arrival wins. A row's
-- arrival is when its delivery was read (`_arrived_at`): for a released row the
-- read of its original file, which may be earlier than a stored version's. Equal
-- consecutive versions are one version; its representative is the stored row
-- when the run holds it, else its first row, and every other row of the run is a
-- duplicate. Of the representatives the last is current, the others go to the
-- audit table: a stored one is retired, an incoming one is superseded on arrival.
-- Outcome of an incoming representative: loaded when its key is new and it is
-- the key's first version, otherwise replaced (it or the version before it
-- went to the audit table). So per file: loaded adds a current row, replaced an
-- audit row, duplicate nothing.
--
-- Only contested keys (delivered more than once, or already stored) need these
-- rules; every other row of the load is simply loaded (merge_batch.sql).
create or replace temp table contested as
select _key from batch group by _key having count(*) > 1
union
select _key from stored_version where _key in (select _key from batch);

create or replace temp table classified as
with candidates as (
    select _key, _file, _arrived_at, _line, _row_hash, false as is_stored
    from batch
    where _key in (select _key from contested)
    union all
    select _key, _file, _arrived_at, _line, _row_hash, true as is_stored
    from stored_version
    where _key in (select _key from contested)
),

runs as (
    select
        *,
        coalesce(lag(_row_hash) over versions <> _row_hash, true) as starts_run
    from candidates
    window versions as (partition by _key order by _file, _arrived_at, _line, not is_stored)
),

numbered as (
    select
        *,
        sum(starts_run::integer) over (
            partition by _key order by _file, _arrived_at, _line, not is_stored
            rows unbounded preceding
        ) as run_number
    from runs
),

marked as (
    select
        *,
        bool_or(is_stored) over (partition by _key, run_number) as run_has_stored,
        bool_or(is_stored) over (partition by _key) as key_has_stored,
        max(run_number) over (partition by _key) as last_run
    from numbered
)

select
    _key,
    _file,
    _arrived_at,
    _line,
    is_stored,
    case
        when is_stored then null
        when run_has_stored or not starts_run then 'duplicate'
        when not key_has_stored and run_number = 1 then 'loaded'
        else 'replaced'
    end as outcome,
    case
        when is_stored then run_number < last_run
        else not run_has_stored and starts_run and run_number < last_run
    end as to_audit,
    not is_stored and not run_has_stored and starts_run and run_number = last_run as to_current
from marked;
