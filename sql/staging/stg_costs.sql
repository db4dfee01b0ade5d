-- One costs extract cast to its typed form.
select
    _line,
    clean_text(cost_id) as cost_id,
    clean_text(customer_id) as customer_id,
    parse_date(cost_date, $date_format) as cost_date,
    lower(clean_text(cost_type)) as cost_type,
    parse_number(amount) as amount,
    clean_text(cost_date) as _raw_cost_date,
    clean_text(amount) as _raw_amount
from extract
