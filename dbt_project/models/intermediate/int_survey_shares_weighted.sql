-- Weighted share agreeing per source x wave x country x question, from respondent answers.
-- An answer agrees when it lies in the question's declared agree range (e.g. 6-9, the top
-- four boxes of a 9-point scale). Sampling error uses Kish's effective sample size
-- n_eff = (sum w)^2 / sum(w^2) and the Wald interval p +/- z * sqrt(p (1 - p) / n_eff) with
-- z = 1.959963984540054, the 97.5% normal quantile (the convention behind published
-- margins of error such as +/-2.9 points for 1,150 respondents). A respondent weighted 0 (an
-- export's mark of someone excluded) counts in no share and in no number of respondents.
with

answers as (
    select * from {{ ref('stg_surveys__respondent_answers') }}
),

questions as (
    select * from {{ ref('stg_surveys__questions') }}
),

-- One row per respondent x answered question: answers are listed in question_position
-- order; a null (not answered, don't know) leaves the respondent out of that question.
answered as (
    select
        survey_source_id,
        wave,
        country_code,
        weight,
        unnest(generate_series(1, len(answers))) as question_position,
        unnest(answers) as answer
    from answers
),

classified as (
    select
        answered.survey_source_id,
        answered.wave,
        answered.country_code,
        questions.question_id,
        answered.weight,
        case
            when answered.answer between questions.agree_min and questions.agree_max then 1
            else 0
        end as agree_indicator
    from answered
    inner join questions
        on
            answered.survey_source_id = questions.survey_source_id
            and answered.wave = questions.wave
            and answered.question_position = questions.question_position
    where answered.answer is not null and answered.weight > 0
),

aggregated as (
    select
        survey_source_id,
        wave,
        country_code,
        question_id,
        count(*) as respondents,
        sum(weight) as weight_sum,
        sum(weight * weight) as weight_squared_sum,
        sum(weight * agree_indicator) as agree_weight_sum
    from classified
    group by survey_source_id, wave, country_code, question_id
),

shares as (
    select
        survey_source_id,
        wave,
        country_code,
        question_id,
        respondents,
        agree_weight_sum / weight_sum as agree_share,
        weight_sum * weight_sum / weight_squared_sum as effective_sample_size
    from aggregated
),

final as (
    select
        shares.survey_source_id,
        questions.survey_source_name,
        shares.wave,
        shares.country_code,
        shares.question_id,
        questions.question_text,
        shares.respondents,
        shares.effective_sample_size,
        100 * shares.agree_share as share_pct,
        100 * cast(1.959963984540054 as double)
        * sqrt(shares.agree_share * (1 - shares.agree_share) / shares.effective_sample_size)
            as margin_of_error_pct,
        questions.citation,
        questions.is_synthetic
    from shares
    inner join questions
        on
            shares.survey_source_id = questions.survey_source_id
            and shares.wave = questions.wave
            and shares.question_id = questions.question_id
)

select * from final
