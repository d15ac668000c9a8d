-- Counterparties with their legal address (latest values; deleted_at: macro totesys_latest). One whose address has no row
-- keeps the row, with NULL address columns (a test fails on it).
select
    c.counterparty_id,
    c.counterparty_legal_name,
    a.address_line_1 as counterparty_legal_address_line_1,
    a.address_line_2 as counterparty_legal_address_line_2,
    a.district as counterparty_legal_district,
    a.city as counterparty_legal_city,
    a.postal_code as counterparty_legal_postal_code,
    a.country as counterparty_legal_country,
    a.phone as counterparty_legal_phone_number,
    c.deleted_at
from {{ totesys_latest('counterparty') }} as c
left join {{ totesys_latest('address') }} as a
    on a.address_id = c.legal_address_id
