-- "Does Germany lag the US?": per country and year, how many tracked leaders are active on
-- social platforms and how far they reach, beside what the public expects of CEOs. A year
-- is measured on its last day with reach data (the latest day for the running year), so
-- a year reads like a year-end balance, not an average over changing rosters.
-- The expectation shown is the headline question (var('ceo_expectation_question_id'), the
-- founding brief's "CEOs should take a clear stand"), taken from
-- fct_country_expectations_yearly, which holds every expectation question with its
-- provenance and picks the country's own figure over the global one.
--
-- Only the year-end days of the daily fact are read: they are looked up first and given
-- as constants, which DuckDB checks against each row group's days (the fact is stored in
-- day order), so the rebuild every day reads four days, not the whole history (a join
-- on the days computed in the query read every row group: 680 MiB at 3 years).
{%- set last_days = year_end_days(ref('fct_executive_reach_daily')) %}
with

reach as (
    select * from {{ ref('fct_executive_reach_daily') }}
    {{ where_year_end_days(last_days) }}
),

executives as (
    select * from {{ ref('dim_executive') }}
),

countries as (
    select * from {{ ref('dim_country') }}
),

expectations as (
    select * from {{ ref('fct_country_expectations_yearly') }}
    where question_id = '{{ var("ceo_expectation_question_id") }}'
),

tracked_executives as (
    {{ executives_at_year_ends('reach', 'executives') }}
),

year_ends as (
    select distinct
        calendar_year,
        as_of_date
    from tracked_executives
),

-- Executives whose counts on the year's last day are synthetic (sandbox, demo history).
synthetic_counts as (
    select distinct
        reach.executive_id,
        reach.metric_date
    from reach
    inner join year_ends
        on reach.metric_date = year_ends.as_of_date
    where reach.is_synthetic
),

tracked as (
    select
        tracked_executives.country_code,
        tracked_executives.calendar_year,
        tracked_executives.as_of_date,
        count(*) as executives_tracked,
        -- Synthetic: a demo executive, or a real one shown with invented counts.
        count(*) filter (
            where tracked_executives.is_synthetic or synthetic_counts.executive_id is not null
        ) as executives_synthetic
    from tracked_executives
    left join synthetic_counts
        on
            tracked_executives.executive_id = synthetic_counts.executive_id
            and tracked_executives.as_of_date = synthetic_counts.metric_date
    group by
        tracked_executives.country_code,
        tracked_executives.calendar_year,
        tracked_executives.as_of_date
),

-- Reach per executive is summed over platforms first, so the median is over leaders.
executive_reach as (
    select
        reach.executive_id,
        reach.country_code,
        year_ends.calendar_year,
        sum(reach.followers) as followers
    from reach
    inner join year_ends
        on reach.metric_date = year_ends.as_of_date
    where reach.followers is not null
    group by reach.executive_id, reach.country_code, year_ends.calendar_year
),

active as (
    select
        country_code,
        calendar_year,
        count(*) as executives_active,
        median(followers) as median_followers,
        sum(followers) as total_followers
    from executive_reach
    group by country_code, calendar_year
),

final as (
    select
        tracked.country_code,
        countries.country_name,
        countries.region,
        tracked.calendar_year,
        tracked.as_of_date,
        tracked.executives_tracked,
        coalesce(active.executives_active, 0) as executives_active,
        100.0 * coalesce(active.executives_active, 0)
        / tracked.executives_tracked as active_share_pct,
        cast(active.median_followers as double) as median_followers,
        cast(coalesce(active.total_followers, 0) as bigint) as total_followers,
        100.0 * tracked.executives_synthetic
        / tracked.executives_tracked as synthetic_executives_pct,
        '{{ var("ceo_expectation_question_id") }}' as expectation_question_id,
        expectations.expectation_share_pct,
        expectations.ci_lower_pct as expectation_ci_lower_pct,
        expectations.ci_upper_pct as expectation_ci_upper_pct,
        expectations.sample_size as expectation_sample_size,
        expectations.is_country_figure as is_country_expectation,
        expectations.wave as expectation_wave,
        expectations.survey_source_id as expectation_source_id,
        expectations.is_synthetic as is_synthetic_expectation
    from tracked
    inner join countries
        on tracked.country_code = countries.country_code
    left join active
        on
            tracked.country_code = active.country_code
            and tracked.calendar_year = active.calendar_year
    left join expectations
        on
            tracked.country_code = expectations.country_code
            and tracked.calendar_year = expectations.calendar_year
)

select * from final
