with

source as (
    select * from {{ source('history', 'history_imports') }}
),

renamed as (
    select
        import_id,
        file_name,
        rows_read,
        rows_loaded,
        rows_rejected,
        loaded_at,
        is_synthetic
    from source
)

select * from renamed
