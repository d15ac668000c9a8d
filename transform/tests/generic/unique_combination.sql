{#- Fails once for every combination of `columns` that occurs in more than one row (a
    multi-column key; dbt's own `unique` takes one column). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as row_count
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
