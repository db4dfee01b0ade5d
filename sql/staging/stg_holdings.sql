-- One holdings extract cast to its typed form. A risk level may be spelled as on
-- the R1–R5 scale ("R3"); a level that is not a whole number stays unparsed.
select
    _line,
    clean_text(customer_id) as customer_id,
    parse_date(balance_date, $date_format) as balance_date,
    clean_text(product_id) as product_id,
    lower(clean_text(asset_class)) as asset_class,
    parse_number(balance) as balance,
    lower(clean_text(liquidity)) as liquidity,
    case
        when parse_number(regexp_replace(ascii_trim(risk_level), '^[Rr]', '')) % 1 = 0
            then parse_number(regexp_replace(ascii_trim(risk_level), '^[Rr]', ''))
    end as risk_level,
    lower(clean_text(goal)) as goal,
    clean_text(balance_date) as _raw_balance_date,
    clean_text(balance) as _raw_balance,
    clean_text(risk_level) as _raw_risk_level
from extract
