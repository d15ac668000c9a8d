{#- One row per version of a sales order (totesys_history.sales_order: key + last_updated).

    sales_record_id: md5 of the version's key, `<sales_order_id>|<last_updated to the
    millisecond>`, as a uuid. It depends on that version alone, so it is the same in every
    rebuild whatever other rows arrive (a row_number over all versions would shift).

    The agreed dates are text YYYY-MM-DD in totesys: a text that is no calendar date
    (2024-02-30, 01/03/2024) becomes NULL, and a not_null test fails on it, rather than an
    error that would stop the whole build. -#}
select
    md5(sales_order_id || '|' || to_char(last_updated, 'YYYY-MM-DD HH24:MI:SS.MS'))::uuid
        as sales_record_id,
    sales_order_id,
    created_at::date as created_date,
    created_at::time as created_time,
    last_updated::date as last_updated_date,
    last_updated::time as last_updated_time,
    staff_id as sales_staff_id,
    counterparty_id,
    units_sold,
    unit_price,
    currency_id,
    design_id,
    {{ text_to_date('agreed_payment_date') }} as agreed_payment_date,
    {{ text_to_date('agreed_delivery_date') }} as agreed_delivery_date,
    agreed_delivery_location_id,
    row_number() over (partition by sales_order_id order by last_updated desc) = 1
        as is_current
from {{ source('totesys_history', 'sales_order') }}
