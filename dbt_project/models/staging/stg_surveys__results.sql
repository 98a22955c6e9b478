with

source as (
    select * from {{ source('surveys', 'survey_results') }}
),

renamed as (
    select
        source_id as survey_source_id,
        source_name as survey_source_name,
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
        file_name,
        file_sha256,
        loaded_at
    from source
)

select * from renamed
