-- One transactions extract (text, canonical names) cast to its typed form; the
-- source text of typed columns rides along so validation can tell an
-- unparseable value from an absent one.
select
    _line,
    clean_text(transaction_id) as transaction_id,
    clean_text(customer_id) as customer_id,
    parse_date(transaction_date, $date_format) as transaction_date,
    parse_number(amount) as amount,
    parse_number(cost) as cost,
    parse_number(quantity) as quantity,
    clean_text(category) as category,
    clean_text(channel) as channel,
    parse_number(discount) as discount,
    upper(clean_text(currency)) as currency,
    clean_text(transaction_date) as _raw_transaction_date,
    clean_text(amount) as _raw_amount,
    clean_text(cost) as _raw_cost,
    clean_text(quantity) as _raw_quantity,
    clean_text(discount) as _raw_discount
from extract
