-- Per platform only: the cross-platform rollup is fct_reach_by_country_sector_all_platforms_daily,
-- so summing a measure over this table's platforms never counts a platform twice. Every
-- group with a tracked executive appears for every platform-day that has data, so a
-- country where no executive is active shows active_share_pct 0 instead of dropping out of
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
{%- set rebuild_from = upstream_rebuild_from(
    incremental_rebuild_from(earlier_start_sql=tracked_counts_changed_from()),
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

tracked_executives as (
    select
        executives.executive_id,
        executives.country_code,
        executives.sector,
        executives.is_synthetic,
        reach_dates.metric_date
    from reach_dates
    inner join executives
        on {{ executive_version_valid_on('executives', 'reach_dates.metric_date') }}
),

tracked_groups as (
    select
        country_code,
        sector,
        metric_date,
        count(*) as executives_tracked
    from tracked_executives
    group by country_code, sector, metric_date
),

platform_days as (
    select distinct
        platform,
        metric_date
    from reach
),

-- A tracked executive is synthetic on a platform-day when the roster says so (demo
-- executive) or the counts of that platform are (sandbox reply, demo history).
synthetic_members as (
    select
        tracked_executives.country_code,
        tracked_executives.sector,
        platform_days.platform,
        tracked_executives.metric_date,
        tracked_executives.executive_id
    from tracked_executives
    inner join platform_days
        on tracked_executives.metric_date = platform_days.metric_date
    where tracked_executives.is_synthetic
    union
    select
        country_code,
        sector,
        platform,
        metric_date,
        executive_id
    from reach
    where is_synthetic
),

synthetic_counts as (
    select
        country_code,
        sector,
        platform,
        metric_date,
        count(*) as executives_synthetic
    from synthetic_members
    group by country_code, sector, platform, metric_date
),

measures as (
    select
        country_code,
        sector,
        platform,
        metric_date,
        count(distinct executive_id) as executives_active,
        sum(followers) as total_followers,
        median(followers) as median_followers,
        sum(followers_change_28d) as followers_change_28d
    from reach
    where followers is not null
    group by country_code, sector, platform, metric_date
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

final as (
    select
        group_days.country_code,
        group_days.sector,
        group_days.platform,
        group_days.metric_date,
        group_days.executives_tracked,
        coalesce(measures.executives_active, 0) as executives_active,
        100.0 * coalesce(measures.executives_active, 0)
        / group_days.executives_tracked as active_share_pct,
        -- DuckDB widens sums of bigint to hugeint, which pandas and most BI drivers reject.
        cast(coalesce(measures.total_followers, 0) as bigint) as total_followers,
        cast(measures.median_followers as double) as median_followers,
        cast(measures.followers_change_28d as bigint) as followers_change_28d,
        100.0 * coalesce(synthetic_counts.executives_synthetic, 0)
        / group_days.executives_tracked as synthetic_executives_pct
    from group_days
    left join measures
        on
            group_days.country_code = measures.country_code
            and group_days.sector = measures.sector
            and group_days.platform = measures.platform
            and group_days.metric_date = measures.metric_date
    left join synthetic_counts
        on
            group_days.country_code = synthetic_counts.country_code
            and group_days.sector = synthetic_counts.sector
            and group_days.platform = synthetic_counts.platform
            and group_days.metric_date = synthetic_counts.metric_date
)

select * from final
