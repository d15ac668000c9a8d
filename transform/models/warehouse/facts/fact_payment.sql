{#- One row per version of a payment (totesys_history.payment), the conventions of
    fact_sales_order: payment_record_id is the md5 of `<payment_id>|<dp__version>` as a
    uuid, stable across rebuilds; is_current when the version is totesys.payment's row; a
    payment_date text that is no calendar date becomes NULL. The bank account numbers are
    left out of the warehouse. -#}
with versions as (
    select h.*, c.dp__version is not null as is_current
    from {{ source('totesys_history', 'payment') }} as h
    left join {{ source('totesys', 'payment') }} as c
        on c.payment_id = h.payment_id and c.dp__version = h.dp__version
    where h.dp__deleted_at is null
)

select
    md5(payment_id || '|' || dp__version)::uuid as payment_record_id,
    payment_id,
    created_at::date as created_date,
    created_at::time as created_time,
    last_updated::date as last_updated_date,
    last_updated::time as last_updated_time,
    transaction_id,
    counterparty_id,
    payment_type_id,
    payment_amount,
    currency_id,
    paid,
    {{ text_to_date('payment_date') }} as payment_date,
    is_current
from versions
