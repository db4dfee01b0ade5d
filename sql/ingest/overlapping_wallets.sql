-- Every wallet period of the customers in the staged batch that have two periods
-- overlapping each other (stored, from an earlier batch of this file, or in this
-- batch), in load order: stored first, then by line. The ingest walks them in that
-- order and quarantines a batch period that overlaps one kept before it, so the
-- share-of-wallet denominator never counts a day twice. A row with the same key
-- (customer_id, period_start) is a correction of that period, not an overlap.
with periods as (
    select customer_id, period_start, period_end, 0 as _line, 0 as origin from wallets
    where customer_id in (select customer_id from staged_batch)
    union all
    select customer_id, period_start, period_end, _line, 1 as origin from batch
    where customer_id in (select customer_id from staged_batch)
    union all
    select customer_id, period_start, period_end, _line, 2 as origin from staged_batch
    where period_start is not null and period_end is not null
),

overlapping as (
    select distinct a.customer_id
    from periods as a
    inner join periods as b
        on
            a.customer_id = b.customer_id
            and a.period_start < b.period_start
            and b.period_start <= a.period_end
)

select customer_id, period_start, period_end, _line, origin
from periods
where customer_id in (select customer_id from overlapping)
order by customer_id, origin > 0, _line
