with

source as (
    select * from {{ source('surveys', 'survey_respondent_answers') }}
),

renamed as (
    select
        source_id as survey_source_id,
        wave,
        country_code,
        respondent_key,
        weight,
        answers,
        file_sha256,
        loaded_at
    from source
)

select * from renamed
