with

source as (
    select * from {{ source('surveys', 'survey_results') }}
),

renamed as (
    select
        cast(source_id as varchar) as survey_source_id,
        cast(source_name as varchar) as survey_source_name,
        cast(wave as integer) as wave,
        cast(scope as varchar) as scope,
        cast(question_id as varchar) as question_id,
        cast(question_text as varchar) as question_text,
        cast(measure as varchar) as measure,
        cast(value as double) as value,
        cast(sample_size as integer) as sample_size,
        cast(margin_of_error_pct as double) as margin_of_error_pct,
        cast(is_published_aggregate as boolean) as is_published_aggregate,
        cast(citation as varchar) as citation,
        cast(file_name as varchar) as file_name,
        cast(file_sha256 as varchar) as file_sha256,
        cast(loaded_at as timestamptz) as loaded_at
    from source
)

select * from renamed
