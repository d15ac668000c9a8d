-- No hourly count is negative: neither the total nor either direction.
select location_id, sensing_date, hourday, pedestriancount, direction_1, direction_2
from {{ source('pedestrian', 'hourly_counts') }}
where pedestriancount < 0
   or direction_1 < 0
   or direction_2 < 0
