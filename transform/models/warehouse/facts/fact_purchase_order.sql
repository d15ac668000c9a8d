{#- One row per version of a purchase order (totesys_history.purchase_order), the
    conventions of fact_sales_order: purchase_record_id is the md5 of
    `<purchase_order_id>|<last_updated>` as a uuid, stable across rebuilds; an agreed date
    text that is no calendar date becomes NULL. -#}
{%- set text_date -%}
case
    when COL !~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$'
        or left(COL, 4) = '0000' then null
    when substr(COL, 9, 2)::int > extract(
        day from date_trunc('month', (left(COL, 7) || '-01')::date) + interval '1 month - 1 day'
    ) then null
    else COL::date
end
{%- endset -%}
select
    md5(purchase_order_id || '|' || to_char(last_updated, 'YYYY-MM-DD HH24:MI:SS.MS'))::uuid
        as purchase_record_id,
    purchase_order_id,
    created_at::date as created_date,
    created_at::time as created_time,
    last_updated::date as last_updated_date,
    last_updated::time as last_updated_time,
    staff_id,
    counterparty_id,
    item_code,
    item_quantity,
    item_unit_price,
    currency_id,
    {{ text_date | replace('COL', 'agreed_payment_date') }} as agreed_payment_date,
    {{ text_date | replace('COL', 'agreed_delivery_date') }} as agreed_delivery_date,
    agreed_delivery_location_id,
    row_number() over (partition by purchase_order_id order by last_updated desc) = 1
        as is_current
from {{ source('totesys_history', 'purchase_order') }}
