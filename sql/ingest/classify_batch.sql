-- Classifies every row of the validated batch against the stored version of its
-- key. The stored version enters the sequence as line 0, so one rule covers
-- corrections across extracts and within one extract: a row equal to the version
-- before it is a duplicate; otherwise it is new (loaded) or replaces that version.
create or replace temp table classified as
with sequence as (
    select _key, _line, _row_hash from batch
    union all
    select _key, 0 as _line, _row_hash
    from stored_version
    where _key in (select _key from batch)
),

marked as (
    select
        *,
        coalesce(lag(_row_hash) over (partition by _key order by _line) = _row_hash, false)
            as is_repeat
    from sequence
),

versions as (
    select
        _key,
        _line,
        lag(_line) over (partition by _key order by _line) as previous_line,
        _line = max(_line) over (partition by _key) as is_final
    from marked
    where not is_repeat
)

select _key, _line, 'duplicate' as outcome, null::bigint as previous_line, false as is_final
from marked
where is_repeat and _line > 0
union all
select
    _key,
    _line,
    case when previous_line is null then 'loaded' else 'replaced' end as outcome,
    previous_line,
    is_final
from versions
where _line > 0
