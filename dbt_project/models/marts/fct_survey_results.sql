-- The interval is value +/- the 95% margin, clipped to what a percentage can be; where no
-- margin is known the bounds stay null rather than pretending the share is exact.
with

survey_results as (
    select * from {{ ref('stg_surveys__results') }}
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
        greatest(value - margin_of_error_pct, 0.0) as ci_lower,
        least(value + margin_of_error_pct, 100.0) as ci_upper,
        citation
    from survey_results
)

select * from final
