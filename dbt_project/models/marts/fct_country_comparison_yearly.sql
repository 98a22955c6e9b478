-- "Does Germany lag the US?": per country and year, how many tracked leaders are active on
-- social platforms and how far they reach, beside what the public expects of CEOs. A year
-- is measured on its last day with reach data (the latest day for the running year), so
-- a year reads like a year-end balance, not an average over changing rosters.
-- The expectation is the country's own survey figure where one exists, else the global
-- one, each from the latest wave not after the year.
with

reach as (
    select * from {{ ref('fct_executive_reach_daily') }}
),

executives as (
    select * from {{ ref('dim_executive') }}
),

countries as (
    select * from {{ ref('dim_country') }}
),

survey_results as (
    select * from {{ ref('fct_survey_results') }}
),

year_ends as (
    select
        cast(year(metric_date) as integer) as calendar_year,
        max(metric_date) as as_of_date
    from reach
    group by year(metric_date)
),

tracked as (
    select
        executives.country_code,
        year_ends.calendar_year,
        year_ends.as_of_date,
        count(*) as executives_tracked
    from year_ends
    inner join executives
        on {{ executive_version_valid_on('executives', 'year_ends.as_of_date') }}
    group by executives.country_code, year_ends.calendar_year, year_ends.as_of_date
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

expectations as (
    select
        survey_source_id,
        wave,
        scope,
        value,
        is_synthetic,
        lower(scope) = 'global' as is_global
    from survey_results
    where
        question_id = '{{ var("ceo_expectation_question_id") }}'
        and measure = '{{ var("ceo_expectation_measure") }}'
),

chosen_expectations as (
    select
        tracked.country_code,
        tracked.calendar_year,
        expectations.survey_source_id,
        expectations.wave,
        expectations.value,
        expectations.is_synthetic,
        not expectations.is_global as is_country_figure
    from tracked
    inner join expectations
        on
            tracked.calendar_year >= expectations.wave
            and (
                expectations.is_global
                or tracked.country_code = upper(expectations.scope)
            )
    qualify row_number() over (
        partition by tracked.country_code, tracked.calendar_year
        -- A real figure always beats a synthetic (demo) one, whatever its scope or wave.
        order by
            expectations.is_synthetic asc,
            expectations.is_global asc,
            expectations.wave desc,
            expectations.survey_source_id asc
    ) = 1
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
        cast(coalesce(active.executives_active, 0) as double)
        / tracked.executives_tracked as active_share,
        cast(active.median_followers as double) as median_followers,
        cast(coalesce(active.total_followers, 0) as bigint) as total_followers,
        chosen_expectations.value as expectation_share_pct,
        chosen_expectations.is_country_figure as is_country_expectation,
        chosen_expectations.wave as expectation_wave,
        chosen_expectations.survey_source_id as expectation_source_id,
        chosen_expectations.is_synthetic as is_synthetic_expectation
    from tracked
    inner join countries
        on tracked.country_code = countries.country_code
    left join active
        on
            tracked.country_code = active.country_code
            and tracked.calendar_year = active.calendar_year
    left join chosen_expectations
        on
            tracked.country_code = chosen_expectations.country_code
            and tracked.calendar_year = chosen_expectations.calendar_year
)

select * from final
