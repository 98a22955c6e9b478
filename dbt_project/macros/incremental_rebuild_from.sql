{#- First day an incremental build of a daily model recomputes, as 'yyyy-mm-dd', or none
    for a full build. The last gap_fill_days + late_data_days days are always redone, so a
    late observation reaches every gap-filled day it feeds; earlier_start_sql can move the
    start back further (e.g. when attribution changed). Computed before the model's SQL
    runs so the filters are constants that DuckDB pushes down to the scans. -#}
{% macro incremental_rebuild_from(date_column='metric_date', earlier_start_sql=none) %}
    {#- Unit tests have no target relation to read; they test the full-build SQL. -#}
    {%- if not execute or model.resource_type == 'unit_test' or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set lookback_days = (var('gap_fill_days') | int) + (var('late_data_days') | int) -%}
    {%- set query -%}
        select case when max({{ date_column }}) is not null then cast(least(
            max({{ date_column }}) - {{ lookback_days }}
        {%- if earlier_start_sql %}, ({{ earlier_start_sql }}){% endif %}
        ) as varchar) end
        from {{ this }}
    {%- endset -%}
    {%- set value = run_query(query).columns[0].values()[0] -%}
    {{ return(value) }}
{% endmacro %}
