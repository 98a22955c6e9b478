{#- The join rule between a day and dim_executive: the version whose [valid_from, valid_to)
    holds the day, and for days before an executive's first version, that first version. -#}
{% macro executive_version_valid_on(versions, day) -%}
    ({{ day }} >= {{ versions }}.valid_from or {{ versions }}.version_number = 1)
    and ({{ versions }}.valid_to is null or {{ day }} < {{ versions }}.valid_to)
{%- endmacro %}
