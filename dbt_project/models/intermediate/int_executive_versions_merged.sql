-- Two sources of history: versions the roster declares (valid_from) and changes the
-- snapshot detected between roster loads. A declared start always wins over a detection
-- date, because the roster knows when a change happened and the snapshot only knows when
-- it was first seen.
with

roster as (
    select * from {{ ref('stg_roster__executives') }}
),

current_versions as (
    select * from {{ ref('int_roster_executives_deduplicated') }}
),

-- The snapshot keeps the start the roster declared when it first saw a version (a new row
-- comes only with new attributes): the version in force takes a later start the roster
-- declares for it now, so a start corrected to a later day moves it. A start moved
-- earlier wins as the roster's declared version; a start the roster no longer gives
-- (its valid_from column dropped) leaves the stored one, as does an executive gone.
snapshot as (
    select
        snapshots.* replace (
            case
                when
                    snapshots.dbt_valid_to is null
                    and current_versions.declared_valid_from > snapshots.declared_valid_from
                    then current_versions.declared_valid_from
                else snapshots.declared_valid_from
            end as declared_valid_from
        )
    from {{ ref('snp_roster__executives') }} as snapshots
    left join current_versions on snapshots.executive_id = current_versions.executive_id
),

declared_versions as (
    select
        executive_id,
        full_name,
        title,
        company_name,
        country_code,
        sector,
        is_synthetic,
        valid_from,
        'declared' as version_source,
        2 as precedence
    from roster
    where valid_from is not null
),

snapshot_with_previous as (
    select
        *,
        lag(declared_valid_from) over (
            partition by executive_id order by dbt_valid_from
        ) as previous_declared_valid_from
    from snapshot
),

-- A snapshot row starts on its declared date when the roster declared a new start with
-- it; an in-place edit that keeps the declared date is an undeclared change and starts on
-- the day of the roster load that brought it (or on the declared date, if that is later).
snapshot_starts as (
    select
        executive_id,
        full_name,
        title,
        company_name,
        country_code,
        sector,
        is_synthetic,
        dbt_valid_from,
        declared_valid_from,
        case
            when
                declared_valid_from is not null
                and (
                    previous_declared_valid_from is null
                    or declared_valid_from != previous_declared_valid_from
                )
                then declared_valid_from
            -- An edit starts on its load day, but never before the start the roster
            -- declares for the version (a version declared for a later date stays there).
            else greatest(cast(timezone('UTC', dbt_valid_from) as date), declared_valid_from)
        end as valid_from
    from snapshot_with_previous
),

-- A later load declaring a start on or before this version's start rewrote that part of
-- history, so this version no longer holds.
detected_versions as (
    select
        executive_id,
        full_name,
        title,
        company_name,
        country_code,
        sector,
        is_synthetic,
        valid_from,
        case
            when valid_from = declared_valid_from then 'declared' else 'detected'
        end as version_source,
        1 as precedence
    from snapshot_starts
    qualify valid_from < coalesce(
        min(valid_from) over (
            partition by executive_id
            order by dbt_valid_from
            rows between 1 following and unbounded following
        ),
        date '9999-12-31'
    )
),

unioned as (
    select * from detected_versions
    union all
    select * from declared_versions
),

-- What the snapshot saw in force on a date outranks today's roster row for that date: an
-- in-place edit must not rewrite the past.
one_per_start as (
    select * from unioned
    qualify row_number() over (
        partition by executive_id, valid_from
        order by precedence asc
    ) = 1
),

with_previous as (
    select
        *,
        lag(struct_pack(title, company_name, country_code, sector)) over (
            partition by executive_id order by valid_from
        ) as previous_attributes
    from one_per_start
),

merged as (
    select
        executive_id,
        full_name,
        title,
        company_name,
        country_code,
        sector,
        is_synthetic,
        valid_from,
        version_source
    from with_previous
    where
        previous_attributes is null
        or previous_attributes
        is distinct from struct_pack(title, company_name, country_code, sector)
)

select * from merged
