-- One wallets extract cast to its typed form.
select
    _line,
    clean_text(customer_id) as customer_id,
    parse_date(period_start, $date_format) as period_start,
    parse_date(period_end, $date_format) as period_end,
    parse_number(total_purchases) as total_purchases,
    clean_text(period_start) as _raw_period_start,
    clean_text(period_end) as _raw_period_end,
    clean_text(total_purchases) as _raw_total_purchases
from extract
