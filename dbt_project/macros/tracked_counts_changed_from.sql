{#- SQL for incremental_rebuild_from(earlier_start_sql=...) of the country x sector
    aggregates: the first stored day whose executives_tracked per country and sector no
    longer matches dim_executive (an executive moved country or sector, joined or left), or
    null when none differs. Every row of a group and day holds the same tracked count, so a
    per-platform table is read as one row per group and day. -#}
{% macro tracked_counts_changed_from() %}
    with stored as (
        select distinct
            country_code,
            sector,
            metric_date,
            executives_tracked
        from {{ this }}
    ),

    stored_days as (
        select distinct metric_date from stored
    ),

    expected as (
        select
            versions.country_code,
            versions.sector,
            stored_days.metric_date,
            count(*) as executives_tracked
        from stored_days
        inner join {{ ref('dim_executive') }} as versions
            on {{ executive_version_valid_on('versions', 'stored_days.metric_date') }}
        group by versions.country_code, versions.sector, stored_days.metric_date
    )

    select min(coalesce(stored.metric_date, expected.metric_date))
    from stored
    full outer join expected
        on
            stored.country_code = expected.country_code
            and stored.sector = expected.sector
            and stored.metric_date = expected.metric_date
    where stored.executives_tracked is distinct from expected.executives_tracked
{% endmacro %}
