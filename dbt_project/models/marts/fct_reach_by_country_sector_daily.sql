-- Every roster group appears for every platform-day that has data, so a country where no
-- executive is active shows active_share 0 instead of dropping out of the comparison.
with

executives as (
    select * from {{ ref('stg_roster__executives') }}
),

reach as (
    select * from {{ ref('fct_executive_reach_daily') }}
),

roster_groups as (
    select
        country_code,
        sector,
        count(*) as executives_tracked
    from executives
    group by country_code, sector
),

platform_days as (
    select distinct
        platform,
        metric_date
    from reach
),

all_platform_days as (
    select distinct
        'all' as platform,
        metric_date
    from reach
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
        roster_groups.country_code,
        roster_groups.sector,
        roster_groups.executives_tracked,
        platform_days.platform,
        platform_days.metric_date
    from roster_groups
    cross join platform_days
    union all
    select
        roster_groups.country_code,
        roster_groups.sector,
        roster_groups.executives_tracked,
        all_platform_days.platform,
        all_platform_days.metric_date
    from roster_groups
    cross join all_platform_days
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
