{#- The first day of every series of int_executive_reach_gap_filled (executive, platform,
    handle), kept in audit.reach_series_starts by the model's post-hook: the daily build's
    check for changed roster accounts reads these few rows (one per account) instead of
    grouping the whole model. dbt's own bookkeeping, like audit.incremental_windows. -#}
{% macro series_starts_exist() %}
    {{ return(adapter.get_relation(this.database, 'audit', 'reach_series_starts') is not none) }}
{% endmacro %}


{#- The stored series and their first days, as SQL: the summary when it exists, else
    (a warehouse built before it) the model itself, grouped. -#}
{% macro stored_series_starts_sql() %}
    {%- if execute and model.resource_type != 'unit_test' and is_incremental()
        and series_starts_exist() -%}
        select executive_id, platform, account_handle, first_date
        from audit.reach_series_starts
    {%- else -%}
        select executive_id, platform, account_handle, min(metric_date) as first_date
        from {{ this }}
        group by executive_id, platform, account_handle
    {%- endif -%}
{% endmacro %}


{#- Post-hook: bring the summary up to date with the rows just written. Rows before this
    build's first rebuilt day were left alone, so the series starting before it keep their
    first day; the others are read back from the rebuilt days only. After a full build (or
    without a summary yet) it is computed whole. -#}
{% macro record_series_starts() %}
    {%- if not execute or model.resource_type == 'unit_test' -%}
        {{ return('') }}
    {%- endif -%}
    {%- set starts = 'audit.reach_series_starts' -%}
    {%- set exists = series_starts_exist() -%}
    {%- set recorded = run_query(
        "select cast(min(rebuild_from) as varchar), count(rebuild_from) "
        ~ "from audit.incremental_windows where invocation_id = '" ~ invocation_id
        ~ "' and model_name = '" ~ this.identifier ~ "'"
    ).rows[0] -%}
    {%- set rebuild_from = recorded[0] if recorded[1] > 0 else none -%}
    {%- if rebuild_from and exists %}
        delete from {{ starts }} where first_date >= date '{{ rebuild_from }}';
        insert into {{ starts }}
        select rebuilt.*
        from (
            select executive_id, platform, account_handle, min(metric_date) as first_date
            from {{ this }}
            where metric_date >= date '{{ rebuild_from }}'
            group by executive_id, platform, account_handle
        ) as rebuilt
        anti join {{ starts }} as kept
            on
                rebuilt.executive_id = kept.executive_id
                and rebuilt.platform = kept.platform
                and rebuilt.account_handle = kept.account_handle;
    {%- else %}
        create schema if not exists audit;
        create or replace table {{ starts }} as
        select executive_id, platform, account_handle, min(metric_date) as first_date
        from {{ this }}
        group by executive_id, platform, account_handle;
    {%- endif %}
{% endmacro %}
