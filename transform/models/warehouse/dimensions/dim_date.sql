{#- Every day from the earliest to the latest date the facts hold (created, last updated,
    agreed payment and delivery, payment dates), generated, not ingested. Built from the
    facts, so it always covers them; empty while there are none. -#}
{%- set fact_dates = [
    ('fact_sales_order', ['created_date', 'last_updated_date', 'agreed_payment_date', 'agreed_delivery_date']),
    ('fact_purchase_order', ['created_date', 'last_updated_date', 'agreed_payment_date', 'agreed_delivery_date']),
    ('fact_payment', ['created_date', 'last_updated_date', 'payment_date']),
] %}
with fact_dates as (
    {%- for fact, columns in fact_dates %}
    {%- set outer = loop %}
    {%- for column in columns %}
    {% if not (outer.first and loop.first) %}union all {% endif -%}
    select {{ column }} as day from {{ ref(fact) }}
    {%- endfor %}
    {%- endfor %}
),

bounds as (
    select min(day) as first_day, max(day) as last_day from fact_dates
)

select
    day::date as date_id,
    extract(year from day)::integer as year,
    extract(month from day)::integer as month,
    extract(day from day)::integer as day,
    extract(isodow from day)::integer as day_of_week,
    trim(to_char(day, 'Day')) as day_name,
    trim(to_char(day, 'Month')) as month_name,
    extract(quarter from day)::integer as quarter
from bounds
cross join lateral generate_series(first_day, last_day, interval '1 day') as d (day)
