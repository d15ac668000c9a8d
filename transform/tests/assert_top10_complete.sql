-- Every period of the top 10 holds exactly min(10, sensors counted in the period) rows,
-- ranked 1..n without gaps: no period missing, none short, none with extra rows.
with daily_expected as (
    select sensing_date as period, least(count(*), 10) as expected_rows
    from {{ ref('pedestrian_daily_totals') }}
    group by sensing_date
),

daily_actual as (
    select sensing_date as period, count(*) as actual_rows, max(rank) as max_rank
    from {{ ref('pedestrian_top10_daily') }}
    group by sensing_date
),

monthly_expected as (
    select month_start as period, least(count(*), 10) as expected_rows
    from {{ ref('pedestrian_monthly_totals') }}
    group by month_start
),

monthly_actual as (
    select month_start as period, count(*) as actual_rows, max(rank) as max_rank
    from {{ ref('pedestrian_top10_monthly') }}
    group by month_start
)

select 'daily' as ranking, coalesce(e.period, a.period) as period,
       e.expected_rows, a.actual_rows, a.max_rank
from daily_expected as e
full join daily_actual as a on a.period = e.period
where e.expected_rows is distinct from a.actual_rows
   or a.max_rank is distinct from a.actual_rows

union all

select 'monthly' as ranking, coalesce(e.period, a.period) as period,
       e.expected_rows, a.actual_rows, a.max_rank
from monthly_expected as e
full join monthly_actual as a on a.period = e.period
where e.expected_rows is distinct from a.actual_rows
   or a.max_rank is distinct from a.actual_rows
