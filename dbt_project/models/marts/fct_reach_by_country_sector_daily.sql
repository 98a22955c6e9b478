-- Every group with a tracked executive appears for every platform-day that has data, so a
-- country where no executive is active shows active_share 0 instead of dropping out of
-- the comparison. Tracked counts executives by the dim_executive version valid that day.
--
-- Incremental like fct_executive_reach_daily, and never from a later day than that fact
-- was rebuilt from in the same build; when stored tracked counts no longer match
-- dim_executive (an executive moved country or sector), the rebuild starts at the first
-- day that differs.
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='metric_date',
        on_schema_change='fail',
    )
}}
{%- set tracked_changed_from -%}
    with stored as (
        select
            country_code,
            sector,
            metric_date,
            executives_tracked
        from {{ this }}
        where platform = 'all'
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
{%- endset %}
{%- set rebuild_from = upstream_rebuild_from(
    incremental_rebuild_from(earlier_start_sql=tracked_changed_from),
    'fct_executive_reach_daily',
) %}
{%- do record_rebuild_from(rebuild_from) %}

with

executives as (
    select * from {{ ref('dim_executive') }}
),

reach as (
    select * from {{ ref('fct_executive_reach_daily') }}
    {%- if rebuild_from %}
        where metric_date >= date '{{ rebuild_from }}'
    {%- endif %}
),

reach_dates as (
    select distinct metric_date from reach
),

tracked_groups as (
    select
        executives.country_code,
        executives.sector,
        reach_dates.metric_date,
        count(*) as executives_tracked
    from reach_dates
    inner join executives
        on {{ executive_version_valid_on('executives', 'reach_dates.metric_date') }}
    group by executives.country_code, executives.sector, reach_dates.metric_date
),

platform_days as (
    select distinct
        platform,
        metric_date
    from reach
    union all
    select
        'all' as platform,
        metric_date
    from reach_dates
),

active_reach as (
    select * from reach
    where followers is not null
),

per_platform as (
    select
        country_code,
        sector,
        platform,
        metric_date,
        count(distinct executive_id) as executives_active,
        sum(followers) as total_followers,
        median(followers) as median_followers,
        sum(followers_change_28d) as followers_change_28d
    from active_reach
    group by country_code, sector, platform, metric_date
),

-- The all-platforms median is over executives, so each executive's platforms are summed
-- first; a median over platform rows would count multi-platform executives twice.
executive_totals as (
    select
        executive_id,
        country_code,
        sector,
        metric_date,
        sum(followers) as followers,
        sum(followers_change_28d) as followers_change_28d
    from active_reach
    group by executive_id, country_code, sector, metric_date
),

across_platforms as (
    select
        country_code,
        sector,
        'all' as platform,
        metric_date,
        count(*) as executives_active,
        sum(followers) as total_followers,
        median(followers) as median_followers,
        sum(followers_change_28d) as followers_change_28d
    from executive_totals
    group by country_code, sector, metric_date
),

group_days as (
    select
        tracked_groups.country_code,
        tracked_groups.sector,
        tracked_groups.executives_tracked,
        platform_days.platform,
        platform_days.metric_date
    from tracked_groups
    inner join platform_days
        on tracked_groups.metric_date = platform_days.metric_date
),

measures as (
    select * from per_platform
    union all
    select * from across_platforms
),

final as (
    select
        group_days.country_code,
        group_days.sector,
        group_days.platform,
        group_days.metric_date,
        group_days.executives_tracked,
        coalesce(measures.executives_active, 0) as executives_active,
        cast(coalesce(measures.executives_active, 0) as double)
        / group_days.executives_tracked as active_share,
        -- DuckDB widens sums of bigint to hugeint, which pandas and most BI drivers reject.
        cast(coalesce(measures.total_followers, 0) as bigint) as total_followers,
        cast(measures.median_followers as double) as median_followers,
        cast(measures.followers_change_28d as bigint) as followers_change_28d
    from group_days
    left join measures
        on
            group_days.country_code = measures.country_code
            and group_days.sector = measures.sector
            and group_days.platform = measures.platform
            and group_days.metric_date = measures.metric_date
)

select * from final
