with

source as (
    select * from {{ source('surveys', 'survey_respondent_answers') }}
),

renamed as (
    select
        cast(source_id as varchar) as survey_source_id,
        cast(wave as integer) as wave,
        cast(country_code as varchar) as country_code,
        cast(respondent_key as ubigint) as respondent_key,
        cast(weight as double) as weight,
        cast(answers as integer[]) as answers,
        cast(file_sha256 as varchar) as file_sha256,
        cast(loaded_at as timestamptz) as loaded_at
    from source
)

select * from renamed
