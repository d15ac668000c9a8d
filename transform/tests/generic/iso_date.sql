{#- Fails for every non-null value whose text is not an ISO 8601 calendar date
    `YYYY-MM-DD` (four-digit year, month 01-12, day 01-31).

    On a text column it catches other formats (`01/11/2019`, `November 01, 2019`). On a
    date column it catches the dates PostgreSQL accepts but no sensor was installed on:
    years before 1 AD (`0019-05-01 BC`) or after 9999 (`20190-05-01`, a typo). The run
    sets DateStyle to ISO, so the cast is `YYYY-MM-DD` for every ordinary date. -#}
{% test iso_date(model, column_name) %}
select {{ column_name }} as failing_value
from {{ model }}
where {{ column_name }} is not null
  and cast({{ column_name }} as text)
      !~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$'
{% endtest %}
