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
        pre_hook="{{ clear_rebuilt_days('metric_date') }}",
        on_schema_change='fail',
    )
}}
{%- set windows = upstream_windows(
    rebuild_windows(
        earlier_start_sql=tracked_counts_changed_from(),
        reach_days=(var('gap_fill_days') | int) + 28,
    ),
    'fct_executive_reach_daily',
) %}
{%- do record_rebuild_windows(windows) %}

with

executives as (
    select * from {{ ref('dim_executive') }}
),

reach as (
    select * from {{ ref('fct_executive_reach_daily') }}
    where {{ in_windows('metric_date', windows) }}
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
        count(*) as executives_tracked,
        count(*) filter (where is_synthetic) as executives_synthetic
    from tracked_executives
    group by country_code, sector, metric_date
),

platform_days as (
    select distinct
        platform,
        metric_date
    from reach
),

-- A tracked executive is synthetic on a platform-day when the roster says so (counted in
-- tracked_groups) or when a real executive's counts on that platform are (sandbox reply,
-- demo history). The roster flag comes by the version id, a join with the small dimension
-- rather than with every tracked executive on every platform.
real_executives_synthetic_counts as (
    select
        reach.country_code,
        reach.sector,
        reach.platform,
        reach.metric_date,
        count(distinct reach.executive_id) as executives_synthetic
    from reach
    inner join executives
        on reach.executive_version_id = executives.executive_version_id
    where reach.is_synthetic and not executives.is_synthetic
    group by reach.country_code, reach.sector, reach.platform, reach.metric_date
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
        tracked_groups.executives_synthetic,
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
        100.0 * (
            group_days.executives_synthetic
            + coalesce(real_executives_synthetic_counts.executives_synthetic, 0)
        ) / group_days.executives_tracked as synthetic_executives_pct
    from group_days
    left join measures
        on
            group_days.country_code = measures.country_code
            and group_days.sector = measures.sector
            and group_days.platform = measures.platform
            and group_days.metric_date = measures.metric_date
    left join real_executives_synthetic_counts
        on
            group_days.country_code = real_executives_synthetic_counts.country_code
            and group_days.sector = real_executives_synthetic_counts.sector
            and group_days.platform = real_executives_synthetic_counts.platform
            and group_days.metric_date = real_executives_synthetic_counts.metric_date
)

-- In day order: a full build lays the days out in sequence, so the filters on recent
-- days of later daily builds and publishes skip the older row groups.
select * from final
order by metric_date
