-- An independent reading of SPEC §10, written from the text alone, to check the
-- Polars transforms (tests/transforms/test_holdings_crosscheck.py).
-- Per customer with a position on D: aum, aum_180d_ago, and the Herfindahl
-- indices over asset classes and over products.
-- A product's position on a day is its latest balance on or before that day,
-- unless that balance is more than $stale_days old; liability classes are not AUM.
with days as (
    select $as_of::date as day, 'now' as which
    union all
    select $as_of::date - 180, 'before'
),

positions as (
    select d.which, h.customer_id, h.product_id, h.asset_class, h.balance
    from days d
    join holdings h
        on h.balance_date <= d.day and h.balance_date >= d.day - $stale_days::integer
    qualify row_number() over (
        partition by d.which, h.customer_id, h.product_id order by h.balance_date desc
    ) = 1
),

assets as (
    select * from positions where not list_contains($liability_classes, asset_class)
),

aum as (
    select which, customer_id, sum(balance) as aum from assets group by all
),

by_class as (
    select customer_id, asset_class, sum(balance) as balance
    from assets where which = 'now' group by all
),

class_index as (
    select c.customer_id, sum(power(c.balance / a.aum, 2)) as asset_class_herfindahl
    from by_class c
    join aum a on a.customer_id = c.customer_id and a.which = 'now'
    where a.aum > 0
    group by all
),

product_index as (
    select p.customer_id, sum(power(p.balance / a.aum, 2)) as product_herfindahl
    from assets p
    join aum a on a.customer_id = p.customer_id and a.which = 'now'
    where p.which = 'now' and a.aum > 0
    group by all
),

held_now as (
    select distinct customer_id from positions where which = 'now'
)

select
    h.customer_id,
    coalesce(n.aum, 0) as aum,
    b.aum as aum_180d_ago,
    c.asset_class_herfindahl,
    p.product_herfindahl
from held_now h
left join aum n on n.customer_id = h.customer_id and n.which = 'now'
left join aum b on b.customer_id = h.customer_id and b.which = 'before'
left join class_index c on c.customer_id = h.customer_id
left join product_index p on p.customer_id = h.customer_id
order by h.customer_id
