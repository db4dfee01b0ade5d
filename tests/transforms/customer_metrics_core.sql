-- A second, independent implementation of the core of `customer_metrics`
-- (SPEC §3–§5) written straight from the SPEC in DuckDB SQL. The pipeline
-- never uses it, so it is not shipped: tests/transforms/test_crosscheck.py runs
-- it beside the Polars transforms and requires the same orders, revenue,
-- margin, frequency/recency/T, churn flag and stage.
-- Money is summed as DECIMAL so that both sides add exactly.
with periods as (
    select 'window' as period, $as_of::date - ($window_days - 1)::integer as first_day,
           $as_of::date as last_day
    union all
    select 'recent', $as_of::date - ($decline_days - 1)::integer, $as_of::date
    union all
    select 'prior', $as_of::date - (2 * $decline_days - 1)::integer,
           $as_of::date - $decline_days::integer
),

tx as (
    select
        customer_id,
        transaction_id,
        transaction_date,
        amount::decimal(18, 4) as amount,
        coalesce(cost, amount * (1 - $default_margin_rate))::decimal(18, 4) as cost
    from transactions
    where transaction_date <= $as_of
),

purchase_days as (
    select
        customer_id,
        transaction_date,
        sum(amount) as day_revenue,
        sum(amount - cost) as day_margin
    from tx
    where amount >= 0  -- returns are not purchases; zero-value purchases are
    group by all
),

summary as (
    select
        customer_id,
        min(transaction_date) as first_purchase_date,
        max(transaction_date) as last_purchase_date,
        count(*) - 1 as repeat_purchases,
        date_diff('day', min(transaction_date), max(transaction_date)) as recency_days,
        date_diff('day', min(transaction_date), $as_of::date) as age_days
    from purchase_days
    group by customer_id
),

-- The churn rule's last activity: the last purchase; for a customer known only from
-- returns (it bought before the data starts), its last return.
activity as (
    select
        customer_id,
        coalesce(max(transaction_date) filter (where amount >= 0), max(transaction_date))
            as last_activity_date
    from tx
    group by customer_id
),

monetary as (
    select
        p.customer_id,
        avg(case when $monetary = 'margin' then p.day_margin else p.day_revenue end)::double
            as monetary_value
    from purchase_days as p
    inner join summary as s using (customer_id)
    where p.transaction_date > s.first_purchase_date
    group by p.customer_id
),

per_period as (
    select
        tx.customer_id,
        p.period,
        count(distinct tx.transaction_id) filter (where tx.amount > 0) as orders,
        sum(tx.amount) as revenue,
        sum(tx.cost) as cost
    from tx
    inner join periods as p on tx.transaction_date between p.first_day and p.last_day
    group by all
),

wallet_parts as (
    select
        w.customer_id,
        p.period,
        greatest(w.period_start, p.first_day) as overlap_start,
        least(w.period_end, p.last_day) as overlap_end,
        w.total_purchases
        * (date_diff('day', greatest(w.period_start, p.first_day), least(w.period_end, p.last_day)) + 1)
        / (date_diff('day', w.period_start, w.period_end) + 1) as prorated_total
    from wallets as w
    cross join periods as p
    where w.period_start <= $as_of and greatest(w.period_start, p.first_day) <= least(w.period_end, p.last_day)
),

wallet_totals as (
    select
        customer_id,
        period,
        sum(prorated_total::decimal(18, 4)) as wallet_total,
        sum(date_diff('day', overlap_start, overlap_end) + 1) as wallet_days
    from wallet_parts
    group by all
),

wallet_revenue as (
    select
        w.customer_id,
        w.period,
        sum(tx.amount) as revenue
    from wallet_parts as w
    inner join tx
        on tx.customer_id = w.customer_id
        and tx.transaction_date between w.overlap_start and w.overlap_end
    group by all
),

wallet as (
    select
        t.customer_id,
        max(t.wallet_total) filter (where t.period = 'window') as window_wallet,
        max(coalesce(r.revenue, 0)) filter (where t.period = 'window') as window_wallet_revenue,
        -- per-day business over the covered days, scaled to the whole half
        max(t.wallet_total / t.wallet_days * $decline_days) filter (where t.period = 'recent')
            as wallet_recent,
        max(t.wallet_total / t.wallet_days * $decline_days) filter (where t.period = 'prior')
            as wallet_prior
    from wallet_totals as t
    left join wallet_revenue as r using (customer_id, period)
    group by t.customer_id
),

known_customers as (
    select customer_id, status, closed_date
    from customers
    where created_date is null or created_date <= $as_of
),

universe as (
    select customer_id from tx
    union
    select customer_id from known_customers
),

measures as (
    select
        u.customer_id,
        s.first_purchase_date,
        s.last_purchase_date,
        coalesce(w.orders, 0) as orders,
        coalesce(w.revenue, 0)::double as revenue,
        coalesce(w.cost, 0)::double as cost,
        coalesce(w.revenue - w.cost, 0)::double as gross_margin,
        s.repeat_purchases,
        s.recency_days,
        s.age_days,
        m.monetary_value,
        date_diff('day', s.first_purchase_date, $as_of::date) + 1 as tenure_days,
        a.last_activity_date,
        date_diff('day', a.last_activity_date, $as_of::date) as days_since_last_purchase,
        coalesce(c.status = 'closed' and (c.closed_date is null or c.closed_date <= $as_of), false)
            as closed,
        coalesce(r.revenue, 0)::double as revenue_recent,
        coalesce(p.revenue, 0)::double as revenue_prior,
        case when wl.window_wallet > 0
            then least(1, greatest(0, wl.window_wallet_revenue / wl.window_wallet))::double
        end as purchase_share,
        wl.wallet_recent::double as wallet_recent,
        wl.wallet_prior::double as wallet_prior
    from universe as u
    left join summary as s using (customer_id)
    left join activity as a using (customer_id)
    left join monetary as m using (customer_id)
    left join per_period as w on w.customer_id = u.customer_id and w.period = 'window'
    left join per_period as r on r.customer_id = u.customer_id and r.period = 'recent'
    left join per_period as p on p.customer_id = u.customer_id and p.period = 'prior'
    left join known_customers as c using (customer_id)
    left join wallet as wl using (customer_id)
),

flagged as (
    select
        *,
        orders * 365.0 / greatest(least($window_days, tenure_days), $floor_days)
            as purchase_frequency,
        coalesce(days_since_last_purchase > $churn_after_days, false) or closed as churned,
        case when revenue_prior > 0 then revenue_recent / revenue_prior - 1 end as revenue_change,
        case when wallet_prior > 0 then wallet_recent / wallet_prior - 1 end as wallet_change
    from measures
)

select
    customer_id,
    first_purchase_date,
    last_purchase_date,
    orders,
    revenue,
    cost,
    gross_margin,
    purchase_frequency,
    purchase_share,
    repeat_purchases,
    recency_days,
    age_days,
    monetary_value,
    churned,
    case
        when churned then 'termination'
        when last_activity_date is null then 'potential'
        when tenure_days <= $development_days then 'development'
        when revenue_change <= -$decline_drop
            and (wallet_change is null or wallet_change > revenue_change) then 'decline'
        when purchase_share is not null and purchase_share >= $maturity_share then 'maturity'
        when purchase_share is null and tenure_days > 365
            and (revenue_change between -$decline_drop and $decline_drop
                 or (revenue_prior = 0 and revenue_recent = 0)) then 'maturity'
        else 'growth'
    end as lifecycle_stage
from flagged
order by customer_id
