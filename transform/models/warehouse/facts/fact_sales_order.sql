{#- One row per version of a sales order: every distinct version totesys_history.sales_order
    holds (by content, dp__version; a delete's record is left out).

    sales_record_id: md5 of `<sales_order_id>|<dp__version>` as a uuid. It depends on that
    version alone, so it is the same in every rebuild whatever other rows arrive, and two
    versions sharing one last_updated millisecond have ids of their own.

    is_current: the version is the row of totesys.sales_order, the source's current row as
    of the last pass (whatever its last_updated); a deleted order has no current version.

    The agreed dates are text YYYY-MM-DD in totesys: a text that is no calendar date
    (2024-02-30, 01/03/2024) becomes NULL, and a not_null test fails on it, rather than an
    error that would stop the whole build. -#}
with versions as (
    select h.*, c.dp__version is not null as is_current
    from {{ source('totesys_history', 'sales_order') }} as h
    left join {{ source('totesys', 'sales_order') }} as c
        on c.sales_order_id = h.sales_order_id and c.dp__version = h.dp__version
    where h.dp__deleted_at is null
)

select
    md5(sales_order_id || '|' || dp__version)::uuid as sales_record_id,
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
    is_current
from versions
