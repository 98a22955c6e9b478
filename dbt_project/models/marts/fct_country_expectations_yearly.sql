-- What the public of a country expects of CEOs, per year and expectation question: the
-- country's own survey figure where one exists, else the global one, each from the latest
-- wave not after the year. A real figure always beats a synthetic (demo) one, whatever its
-- scope or wave. One row per country and year of fct_country_comparison_yearly (a country
-- with a tracked executive on the year's last day with reach data: macro
-- executives_at_year_ends) and question (var('ceo_expectation_question_ids')), so a
-- question without any figure shows as such (has_figure false) instead of vanishing, and
-- each row joins its comparison row on country_code and calendar_year.
--
-- Only the year-end days of the daily fact are read, given as constants (as in
-- fct_country_comparison_yearly).
{%- set last_days = year_end_days(ref('fct_executive_reach_daily')) %}
with

survey_results as (
    select * from {{ ref('fct_survey_results') }}
),

executives as (
    select * from {{ ref('dim_executive') }}
),

reach as (
    select metric_date from {{ ref('fct_executive_reach_daily') }}
    {{ where_year_end_days(last_days) }}
),

tracked_country_years as (
    select distinct
        tracked.country_code,
        tracked.calendar_year
    from ({{ executives_at_year_ends('reach', 'executives') }}) as tracked
),

-- Every expectation question, whether or not any survey has a figure for it.
question_ids as (
    select ids.question_id
    from (
        values
        {%- for question_id in var('ceo_expectation_question_ids') %}
            ('{{ question_id }}'){{ ',' if not loop.last }}
        {%- endfor %}
    ) as ids (question_id)
),

expectation_figures as (
    select
        *,
        lower(scope) = 'global' as is_global
    from survey_results
    where
        measure = 'share_pct'
        and question_id in (select question_ids.question_id from question_ids)
),

survey_questions as (
    select * from {{ ref('stg_surveys__questions') }}
),

-- The wording of the latest real wave (a demo file may word a question its own way): of
-- its figures, else of the questions a survey asked (null when none did).
worded as (
    select
        question_id,
        question_text,
        0 as preference,
        is_synthetic,
        wave,
        survey_source_id
    from expectation_figures
    where question_text is not null
    union all
    select
        question_id,
        question_text,
        1 as preference,
        is_synthetic,
        wave,
        survey_source_id
    from survey_questions
    where question_text is not null
),

questions as (
    select
        question_ids.question_id,
        worded.question_text
    from question_ids
    left join worded on question_ids.question_id = worded.question_id
    qualify row_number() over (
        partition by question_ids.question_id
        order by
            worded.preference asc,
            worded.is_synthetic asc,
            worded.wave desc,
            worded.survey_source_id asc
    ) = 1
),

country_years as (
    select
        tracked_country_years.country_code,
        tracked_country_years.calendar_year,
        questions.question_id,
        questions.question_text
    from tracked_country_years
    cross join questions
),

chosen as (
    select
        country_years.country_code,
        country_years.calendar_year,
        country_years.question_id,
        expectation_figures.value,
        expectation_figures.ci_lower,
        expectation_figures.ci_upper,
        expectation_figures.margin_of_error_pct,
        expectation_figures.sample_size,
        expectation_figures.survey_source_id,
        expectation_figures.survey_source_name,
        expectation_figures.wave,
        expectation_figures.citation,
        expectation_figures.is_synthetic,
        not expectation_figures.is_global as is_country_figure
    from country_years
    inner join expectation_figures
        on
            country_years.question_id = expectation_figures.question_id
            and country_years.calendar_year >= expectation_figures.wave
            and (
                expectation_figures.is_global
                or country_years.country_code = upper(expectation_figures.scope)
            )
    qualify row_number() over (
        partition by
            country_years.country_code,
            country_years.calendar_year,
            country_years.question_id
        order by
            expectation_figures.is_synthetic asc,
            expectation_figures.is_global asc,
            expectation_figures.wave desc,
            expectation_figures.survey_source_id asc
    ) = 1
),

final as (
    select
        country_years.country_code,
        country_years.calendar_year,
        country_years.question_id,
        country_years.question_text,
        chosen.country_code is not null as has_figure,
        chosen.value as expectation_share_pct,
        chosen.ci_lower as ci_lower_pct,
        chosen.ci_upper as ci_upper_pct,
        chosen.margin_of_error_pct,
        chosen.sample_size,
        chosen.is_country_figure,
        chosen.wave,
        chosen.survey_source_id,
        chosen.survey_source_name,
        chosen.citation,
        chosen.is_synthetic
    from country_years
    left join chosen
        on
            country_years.country_code = chosen.country_code
            and country_years.calendar_year = chosen.calendar_year
            and country_years.question_id = chosen.question_id
)

select * from final
