with

platforms as (
    select * from {{ ref('platforms') }}
),

final as (
    select
        platform,
        platform_name,
        follower_source
    from platforms
)

select * from final
