{#- The compound-key form of dbt's relationships test: every combination of `columns` in the
    model is a key (`field_columns`) of `to`. -#}
{% test relationships_of_columns(model, columns, to, field_columns) %}
select
    {% for column in columns %}child.{{ column }}{{ ', ' if not loop.last }}{% endfor %}
from {{ model }} as child
where not exists (
    select 1
    from {{ to }} as parent
    where
        {% for column in columns -%}
            parent.{{ field_columns[loop.index0] }} = child.{{ column }}
            {{- ' and' if not loop.last }}
        {% endfor %}
)
{% endtest %}
