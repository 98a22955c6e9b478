{#- The snapshot's clock as an instant (TIMESTAMP WITH TIME ZONE), the type of the
    loaded_at its versions start at: dbt-duckdb's own casts it to a local TIMESTAMP, and
    dbt then warned on every build that the two types differ. dbt uses this clock only for
    the rows of hard deletes, which the snapshot does not record. -#}
{% macro duckdb__snapshot_get_time() -%}
    {{ current_timestamp() }}
{%- endmacro %}
