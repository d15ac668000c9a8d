{#- A totesys text date (YYYY-MM-DD) as a DATE; NULL when the text is no calendar date
    (2024-02-30, 01/03/2024, year 0000), so a not_null test fails on it instead of a cast
    error stopping the whole build. One rule for every fact. -#}
{% macro text_to_date(column) -%}
case
    when {{ column }} !~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$'
        or left({{ column }}, 4) = '0000' then null
    when substr({{ column }}, 9, 2)::int > extract(
        day from date_trunc('month', (left({{ column }}, 7) || '-01')::date)
            + interval '1 month - 1 day'
    ) then null
    else {{ column }}::date
end
{%- endmacro %}
