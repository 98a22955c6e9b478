{#- First day an incremental build of a daily model recomputes, as 'yyyy-mm-dd', or none
    for a full build. The last gap_fill_days + late_data_days days are always redone, so a
    late observation reaches every gap-filled day it feeds; earlier_start_sql can move the
    start back further (e.g. when attribution changed), and so can the var rebuild_from
    ('yyyy-mm-dd': the first day of raw rows loaded since the last build, which
    warehouse_build passes; no day before it depends on a later one). Computed before the
    model's SQL runs so the filters are constants that DuckDB pushes down to the scans. -#}
{% macro incremental_rebuild_from(date_column='metric_date', earlier_start_sql=none) %}
    {#- Unit tests have no target relation to read; they test the full-build SQL. -#}
    {%- if not execute or model.resource_type == 'unit_test' or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set lookback_days = (var('gap_fill_days') | int) + (var('late_data_days') | int) -%}
    {%- set requested = var('rebuild_from', none) -%}
    {%- set query -%}
        select case when max({{ date_column }}) is not null then cast(least(
            max({{ date_column }}) - {{ lookback_days }}
        {%- if earlier_start_sql %}, ({{ earlier_start_sql }}){% endif %}
        {%- if requested %}, date '{{ requested }}'{% endif %}
        ) as varchar) end
        from {{ this }}
    {%- endset -%}
    {%- set value = run_query(query).columns[0].values()[0] -%}
    {{ return(value) }}
{% endmacro %}


{#- Record the first day this model recomputes in this invocation (none: all of it), for
    the models built from it (see upstream_rebuild_from). -#}
{% macro record_rebuild_from(rebuild_from) %}
    {%- if not execute or model.resource_type == 'unit_test' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set value = "date '" ~ rebuild_from ~ "'" if rebuild_from else 'null' -%}
    {%- do ensure_incremental_windows() -%}
    {%- do run_query(
        "delete from audit.incremental_windows where invocation_id = '" ~ invocation_id
        ~ "' and model_name = '" ~ this.identifier ~ "'; "
        ~ "insert into audit.incremental_windows values ('" ~ invocation_id ~ "', '"
        ~ this.identifier ~ "', " ~ value ~ ", now())"
    ) -%}
{% endmacro %}


{#- The earlier of rebuild_from and the first day `upstream` recomputed in this
    invocation: a model must redo every day its input changed. None (a full build) when
    the upstream model was built whole; rebuild_from unchanged when it was not built. -#}
{% macro upstream_rebuild_from(rebuild_from, upstream) %}
    {%- if not execute or model.resource_type == 'unit_test' or not rebuild_from -%}
        {{ return(rebuild_from) }}
    {%- endif -%}
    {%- do ensure_incremental_windows() -%}
    {%- set recorded = run_query(
        "select count(*), cast(min(rebuild_from) as varchar), count(rebuild_from) "
        ~ "from audit.incremental_windows where invocation_id = '" ~ invocation_id
        ~ "' and model_name = '" ~ upstream ~ "'"
    ).rows[0] -%}
    {%- if recorded[0] == 0 -%}
        {{ return(rebuild_from) }}
    {%- elif recorded[2] == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return([rebuild_from, recorded[1]] | min) }}
{% endmacro %}


{#- dbt's own bookkeeping, written and read only by the macros above: this is the one
    statement of the table (the raw contract, include/social_leadership/raw_contract.py,
    holds what the Python loaders write). -#}
{% macro ensure_incremental_windows() %}
    {%- do run_query(
        "create schema if not exists audit; create table if not exists "
        ~ "audit.incremental_windows (invocation_id varchar not null, model_name varchar "
        ~ "not null, rebuild_from date, recorded_at timestamptz not null)"
    ) -%}
{% endmacro %}
