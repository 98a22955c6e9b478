-- Published figures and shares computed from respondent microdata, side by side. The
-- interval is value +/- the 95% margin, clipped to what a percentage can be; for computed
-- rows the margin is the Wald margin on the effective sample size (see
-- int_survey_shares_weighted). Where no margin is known the bounds stay null rather than
-- pretending the share is exact.
with

published as (
    select * from {{ ref('stg_surveys__results') }}
),

computed as (
    select * from {{ ref('int_survey_shares_weighted') }}
),

unioned as (
    select
        survey_source_id,
        survey_source_name,
        wave,
        scope,
        question_id,
        question_text,
        measure,
        value,
        sample_size,
        margin_of_error_pct,
        is_published_aggregate,
        citation,
        cast(null as double) as effective_sample_size,
        case when margin_of_error_pct is not null then 'published_margin' end
            as interval_method,
        false as is_synthetic
    from published

    union all

    select
        survey_source_id,
        survey_source_name,
        wave,
        country_code as scope,
        question_id,
        question_text,
        'share_pct' as measure,
        share_pct as value,
        cast(respondents as integer) as sample_size,
        margin_of_error_pct,
        false as is_published_aggregate,
        citation,
        effective_sample_size,
        'wald_effective_n' as interval_method,
        is_synthetic
    from computed
),

final as (
    select
        survey_source_id,
        survey_source_name,
        wave,
        scope,
        question_id,
        question_text,
        measure,
        value,
        sample_size,
        margin_of_error_pct,
        is_published_aggregate,
        -- A share cannot leave 0-100; an index has no such bounds.
        case
            when measure = 'share_pct' then greatest(value - margin_of_error_pct, 0.0)
            else value - margin_of_error_pct
        end as ci_lower,
        case
            when measure = 'share_pct' then least(value + margin_of_error_pct, 100.0)
            else value + margin_of_error_pct
        end as ci_upper,
        citation,
        effective_sample_size,
        interval_method,
        is_synthetic
    from unioned
)

select * from final
