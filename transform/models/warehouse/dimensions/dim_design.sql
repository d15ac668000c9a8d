select
    design_id,
    design_name,
    file_location,
    file_name
from {{ source('totesys', 'design') }}
