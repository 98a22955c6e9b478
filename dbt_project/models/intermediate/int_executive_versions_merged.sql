-- Two sources of history: versions the roster declares (valid_from) and changes the
-- snapshot detected between roster loads. A declared start always wins over a detection
-- date, because the roster knows when a change happened and the snapshot only knows when
-- it was first seen.
with

roster as (
    select * from {{ ref('stg_roster__executives') }}
),

-- The snapshot adds a row when the roster changes the version in force or its declared
-- start (declared_valid_from is one of its check columns): consecutive rows of equal
-- attributes are one version whose start the roster corrected. It keeps the last start
-- the roster gave (a start the roster no longer gives, its valid_from column dropped,
-- leaves it), first seen at its first row.
snapshot_rows as (
    select
        *,
        struct_pack(title, company_name, country_code, sector) as attributes,
        lag(attributes) over (
            partition by executive_id order by dbt_valid_from
        ) as previous_attributes
    from {{ ref('snp_roster__executives') }}
),

snapshot_numbered as (
    select
        *,
        sum(
            case
                when previous_attributes is distinct from attributes then 1
                else 0
            end
        ) over (
            partition by executive_id
            order by dbt_valid_from
            rows between unbounded preceding and current row
        ) as version_number
    from snapshot_rows
),

snapshot as (
    select
        executive_id,
        version_number,
        arg_max(full_name, dbt_valid_from) as full_name,
        any_value(title) as title,
        any_value(company_name) as company_name,
        any_value(country_code) as country_code,
        any_value(sector) as sector,
        any_value(attributes) as attributes,
        arg_max(is_synthetic, dbt_valid_from) as is_synthetic,
        arg_max(declared_valid_from, dbt_valid_from) filter (
            where declared_valid_from is not null
        ) as declared_valid_from,
        -- The start the roster gave when the version first came (null too: arg_min would
        -- skip it).
        arg_min_null(declared_valid_from, dbt_valid_from) as first_declared_valid_from,
        min(dbt_valid_from) as dbt_valid_from
    from snapshot_numbered
    group by executive_id, version_number
),

declared_versions as (
    select
        executive_id,
        full_name,
        title,
        company_name,
        country_code,
        sector,
        struct_pack(title, company_name, country_code, sector) as attributes,
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

-- A version starts on its declared date when the roster declared a new start with it, or
-- corrected its start since; an in-place edit that keeps the declared date is an
-- undeclared change and starts on the day of the roster load that brought it (or on the
-- declared date, if that is later).
snapshot_starts as (
    select
        executive_id,
        full_name,
        title,
        company_name,
        country_code,
        sector,
        attributes,
        is_synthetic,
        dbt_valid_from,
        declared_valid_from,
        first_declared_valid_from,
        case
            when
                declared_valid_from is not null
                and (
                    previous_declared_valid_from is null
                    or first_declared_valid_from is distinct from previous_declared_valid_from
                    or declared_valid_from != first_declared_valid_from
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
        attributes,
        is_synthetic,
        valid_from,
        declared_valid_from,
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

-- A version the snapshot saw that the roster now declares with another start (no version
-- of other attributes, declared or seen, between the two starts): the roster corrected
-- that start after the version was no longer the one in force, which the snapshot cannot
-- see; the declared start wins. An in-place edit keeping the declared start is not
-- re-dated, so it still starts on its load day.
redated_versions as (
    select distinct
        detected.executive_id,
        detected.valid_from
    from detected_versions as detected
    inner join declared_versions as declared
        on
            detected.executive_id = declared.executive_id
            and detected.attributes = declared.attributes
            and declared.valid_from is distinct from detected.declared_valid_from
    where not exists (
        select 1
        from (
            select
                executive_id,
                valid_from,
                attributes
            from declared_versions
            union all
            select
                executive_id,
                valid_from,
                attributes
            from detected_versions
        ) as between_them
        where
            between_them.executive_id = detected.executive_id
            and between_them.valid_from > least(detected.valid_from, declared.valid_from)
            and between_them.valid_from < greatest(detected.valid_from, declared.valid_from)
            and between_them.attributes != detected.attributes
    )
),

unioned as (
    select
        detected_versions.executive_id,
        detected_versions.full_name,
        detected_versions.title,
        detected_versions.company_name,
        detected_versions.country_code,
        detected_versions.sector,
        detected_versions.attributes,
        detected_versions.is_synthetic,
        detected_versions.valid_from,
        detected_versions.version_source,
        detected_versions.precedence
    from detected_versions
    anti join redated_versions
        on
            detected_versions.executive_id = redated_versions.executive_id
            and detected_versions.valid_from = redated_versions.valid_from
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
        lag(attributes) over (
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
        or previous_attributes is distinct from attributes
)

select * from merged
