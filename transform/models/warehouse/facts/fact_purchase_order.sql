{#- One row per version of a purchase order (totesys_history.purchase_order), the
    conventions of fact_sales_order: purchase_record_id is the md5 of
    `<purchase_order_id>|<dp__version>` as a uuid, stable across rebuilds; is_current when
    the version is totesys.purchase_order's row; an agreed date text that is no calendar
    date becomes NULL. -#}
with versions as (
    select h.*, c.dp__version is not null as is_current
    from {{ source('totesys_history', 'purchase_order') }} as h
    left join {{ source('totesys', 'purchase_order') }} as c
        on c.purchase_order_id = h.purchase_order_id and c.dp__version = h.dp__version
    where h.dp__deleted_at is null
)

select
    md5(purchase_order_id || '|' || dp__version)::uuid as purchase_record_id,
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
    is_current
from versions
