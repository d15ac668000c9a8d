{#- One row per version of a purchase order (totesys_history.purchase_order), the
    conventions of fact_sales_order: purchase_record_id is the md5 of
    `<purchase_order_id>|<last_updated>` as a uuid, stable across rebuilds; an agreed date
    text that is no calendar date becomes NULL. -#}
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
    {{ text_to_date('agreed_payment_date') }} as agreed_payment_date,
    {{ text_to_date('agreed_delivery_date') }} as agreed_delivery_date,
    agreed_delivery_location_id,
    row_number() over (partition by purchase_order_id order by last_updated desc) = 1
        as is_current
from {{ source('totesys_history', 'purchase_order') }}
