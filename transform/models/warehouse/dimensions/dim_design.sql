select
    design_id,
    design_name,
    file_location,
    file_name,
    deleted_at
from {{ totesys_latest('design') }} as d
