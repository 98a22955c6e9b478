{#- Today's date in UTC, the day every date of the warehouse is in: DuckDB's current_date
    follows the session's time zone (the machine's, under dbt). -#}
{% macro utc_today() -%}
    cast(timezone('UTC', current_timestamp) as date)
{%- endmacro %}
