-- Published figures and shares computed from respondent microdata, side by side. The
-- interval is value +/- the 95% margin, clipped to what a percentage can be; for computed
-- rows the margin is the Wald margin on the effective sample size (see
-- int_survey_shares_weighted). A published share with its sample size but no margin gets
-- the Wald margin on that sample size, the convention behind published margins (+/-2.9
-- points for 1,150 respondents at 50%); labelled wald_published_n, as the published size
-- may count respondents before weighting. Where neither is known the bounds stay null
-- rather than pretending the share is exact.
with

published_rows as (
    select * from {{ ref('stg_surveys__results') }}
),

published as (
    select
        * exclude (margin_of_error_pct),
        coalesce(
            margin_of_error_pct,
            case
                when measure = 'share_pct' and sample_size > 0
                    then
                        100 * cast(1.959963984540054 as double)
                        * sqrt((value / 100) * (1 - value / 100) / sample_size)
            end
        ) as margin_of_error_pct,
        case
            when margin_of_error_pct is not null then 'published_margin'
            when measure = 'share_pct' and sample_size > 0 then 'wald_published_n'
        end as interval_method
    from published_rows
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
        interval_method,
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
        -- A share cannot leave 0-100; an index has no such bounds. No margin, no bounds:
        -- greatest() and least() pass over a null, which would make them 0 and 100.
        case
            when margin_of_error_pct is null then null
            when measure = 'share_pct' then greatest(value - margin_of_error_pct, 0.0)
            else value - margin_of_error_pct
        end as ci_lower,
        case
            when margin_of_error_pct is null then null
            when measure = 'share_pct' then least(value + margin_of_error_pct, 100.0)
            else value + margin_of_error_pct
        end as ci_upper,
        citation,
        effective_sample_size,
        interval_method,
        is_synthetic
    from unioned
),

-- A share's own columns, named as shares are in every mart (*_pct, 0-100), null for an
-- index: value, ci_lower and ci_upper hold both, as BI queries read them.
with_shares as (
    select
        *,
        case when measure = 'share_pct' then value end as share_pct,
        case when measure = 'share_pct' then ci_lower end as share_ci_lower_pct,
        case when measure = 'share_pct' then ci_upper end as share_ci_upper_pct
    from final
)

select * from with_shares
