-- Staff with their department's name and location (latest values). A staff member whose
-- department has no row keeps the row, with NULL department columns (a test fails on it).
select
    s.staff_id,
    s.first_name,
    s.last_name,
    d.department_name,
    d.location,
    s.email_address,
    s.deleted_at
from {{ totesys_latest('staff') }} as s
left join {{ totesys_latest('department') }} as d
    on d.department_id = s.department_id
