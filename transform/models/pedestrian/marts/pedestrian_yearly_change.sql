-- Footfall per sensor in two 12-month windows (vars footfall_before_start and
-- footfall_after_start; each window [start, start + 12 months)), for the sensors
-- counted in both windows.
{%- set before_start = var('footfall_before_start') %}
{%- set after_start = var('footfall_after_start') %}
{%- for name, value in [('footfall_before_start', before_start), ('footfall_after_start', after_start)] %}
    {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', value | string) %}
        {{ exceptions.raise_compiler_error(name ~ ' must be a date YYYY-MM-DD, got ' ~ value) }}
    {%- endif %}
{%- endfor %}

with windows as (
    select
        'before' as window_name,
        cast('{{ before_start }}' as date) as window_start,
        cast(cast('{{ before_start }}' as date) + interval '12 months' as date) as window_end
    union all
    select
        'after',
        cast('{{ after_start }}' as date),
        cast(cast('{{ after_start }}' as date) + interval '12 months' as date)
),

totals as (
    select
        d.location_id,
        max(d.location_name) as location_name,
        w.window_name,
        sum(d.pedestrian_count)::bigint as pedestrian_count
    from {{ ref('pedestrian_daily_totals') }} as d
    inner join windows as w
        on d.sensing_date >= w.window_start and d.sensing_date < w.window_end
    group by d.location_id, w.window_name
),

before_window as (
    select * from totals where window_name = 'before'
),

after_window as (
    select * from totals where window_name = 'after'
)

select
    b.location_id,
    coalesce(a.location_name, b.location_name) as location_name,
    (select window_start from windows where window_name = 'before') as before_start,
    (select window_start from windows where window_name = 'after') as after_start,
    b.pedestrian_count as before_count,
    a.pedestrian_count as after_count,
    a.pedestrian_count - b.pedestrian_count as count_change,
    round(
        100.0 * (a.pedestrian_count - b.pedestrian_count) / nullif(b.pedestrian_count, 0), 2
    ) as percent_change
from before_window as b
inner join after_window as a on a.location_id = b.location_id
