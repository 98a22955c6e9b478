with

source as (
    select * from {{ source('surveys', 'survey_questions') }}
),

renamed as (
    select
        cast(source_id as varchar) as survey_source_id,
        cast(source_name as varchar) as survey_source_name,
        cast(wave as integer) as wave,
        cast(question_id as varchar) as question_id,
        cast(question_position as integer) as question_position,
        cast(question_text as varchar) as question_text,
        cast(scale_min as integer) as scale_min,
        cast(scale_max as integer) as scale_max,
        cast(agree_min as integer) as agree_min,
        cast(agree_max as integer) as agree_max,
        cast(citation as varchar) as citation,
        cast(is_synthetic as boolean) as is_synthetic,
        cast(file_name as varchar) as file_name,
        cast(file_sha256 as varchar) as file_sha256,
        cast(loaded_at as timestamptz) as loaded_at
    from source
)

select * from renamed
