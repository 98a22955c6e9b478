with

source as (
    select * from {{ source('surveys', 'survey_questions') }}
),

renamed as (
    select
        source_id as survey_source_id,
        source_name as survey_source_name,
        wave,
        question_id,
        question_position,
        question_text,
        scale_min,
        scale_max,
        agree_min,
        agree_max,
        citation,
        is_synthetic,
        file_name,
        file_sha256,
        loaded_at
    from source
)

select * from renamed
