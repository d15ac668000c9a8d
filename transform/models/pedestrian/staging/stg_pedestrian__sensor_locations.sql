select
    location_id,
    sensor_description,
    sensor_name,
    installation_date,
    note,
    location_type,
    status,
    direction_1,
    direction_2,
    latitude,
    longitude
from {{ source('pedestrian', 'sensor_locations') }}
