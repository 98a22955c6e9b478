with

source as (
    select * from {{ source('history', 'history_imports') }}
),

renamed as (
    select
        cast(import_id as bigint) as import_id,
        cast(file_name as varchar) as file_name,
        cast(rows_read as bigint) as rows_read,
        cast(rows_loaded as bigint) as rows_loaded,
        cast(rows_rejected as bigint) as rows_rejected,
        cast(loaded_at as timestamptz) as loaded_at
    from source
)

select * from renamed
