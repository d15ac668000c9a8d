{#- Fails for every non-null value outside [min_value, max_value] (both inclusive):
    below the minimum OR above the maximum. -#}
{% test value_between(model, column_name, min_value, max_value) %}
select {{ column_name }} as failing_value
from {{ model }}
where {{ column_name }} < {{ min_value }}
   or {{ column_name }} > {{ max_value }}
{% endtest %}
