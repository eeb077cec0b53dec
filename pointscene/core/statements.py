"""Single-row statements whose SQL is built once per process, for the few that every run sends.

Django compiles a queryset anew on every call: for the cheapest run (docs/benchmarks.md, Fleet) the job's SELECT,
the run's INSERT and two UPDATEs cost more CPU compiling than sending, about half of what the run itself costs a
worker. These helpers build the same statements once per (model, columns, database vendor), and run them through
Django's cursor, so that query logging, error mapping (IntegrityError), transactions and the health checks stay
Django's; values are prepared, and rows converted, by the model's own fields, as the ORM does.

Only plain values: an expression (F, Case, ...) is not compiled here. Use the ORM for anything else.
"""

from __future__ import annotations

from functools import cache
from typing import TypeVar

from django.db import connections, models
from django.db.models.fields import AutoFieldMixin

M = TypeVar("M", bound=models.Model)


def _quote(using: str, name: str) -> str:
    return connections[using].ops.quote_name(name)


def _plain(model: type[models.Model]) -> None:
    """Refuses what these statements do not handle: a model that inherits another's table, or whose columns have
    database defaults (the ORM leaves those out of an INSERT; these statements would not)."""
    meta = model._meta
    if meta.parents or any(f.has_db_default() for f in meta.concrete_fields):
        raise TypeError(f"{model.__name__}: not a plain single-table model; use the ORM")


# Cached per database alias and vendor: what a field's converters and preparations depend on is the alias's settings,
# the same for every thread's connection to it.
@cache
def _select_sql(model: type[models.Model], vendor: str, using: str) -> tuple[str, tuple, list]:
    _plain(model)
    meta = model._meta
    fields = meta.concrete_fields
    table = _quote(using, meta.db_table)
    # Qualified column names, as Django writes them: a query log reads the same as the ORM's.
    columns = ", ".join(f"{table}.{_quote(using, f.column)}" for f in fields)
    sql = f"SELECT {columns} FROM {table} WHERE {table}.{_quote(using, meta.pk.column)} = %s"
    connection = connections[using]
    converters = []
    for i, field in enumerate(fields):
        col = field.get_col(meta.db_table)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if found:
            converters.append((i, found, col))
    return sql, tuple(f.attname for f in fields), converters


def get_by_pk(model: type[M], pk: int, using: str = "default") -> M | None:
    """`model.objects.filter(pk=pk).first()`, every concrete field loaded, without compiling a query."""
    connection = connections[using]
    sql, attnames, converters = _select_sql(model, connection.vendor, using)
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for i, found, col in converters:
        for converter in found:
            values[i] = converter(values[i], col, connection)
    return model.from_db(using, attnames, values)


@cache
def _insert_sql(model: type[models.Model], vendor: str, using: str) -> tuple[str, tuple, tuple]:
    _plain(model)
    meta = model._meta
    if not isinstance(meta.pk, AutoFieldMixin):
        raise TypeError(f"{model.__name__}: insert() is for models whose primary key the database assigns")
    fields = tuple(f for f in meta.local_concrete_fields if f is not meta.pk and not f.generated)
    columns = ", ".join(_quote(using, f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    returning, returning_params = connections[using].ops.return_insert_columns([meta.pk])
    sql = f"INSERT INTO {_quote(using, meta.db_table)} ({columns}) VALUES ({placeholders}) {returning}"
    return sql, fields, tuple(returning_params)


def insert(obj: models.Model, using: str = "default") -> None:
    """`obj.save(force_insert=True)` for a model with an automatic primary key, without compiling a query and
    without the save signals (which is why it is only for models nothing listens to). Sets obj.pk."""
    if obj.pk is not None:
        raise ValueError(f"{type(obj).__name__} already has a primary key: insert() is for new rows")
    connection = connections[using]
    if not connection.features.can_return_columns_from_insert:
        obj.save(force_insert=True, using=using)
        return
    sql, fields, returning_params = _insert_sql(type(obj), connection.vendor, using)
    values = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        (pk,) = connection.ops.fetch_returned_insert_columns(cursor, list(returning_params))
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = using


@cache
def _update_sql(model: type[models.Model], names: tuple[str, ...], vendor: str, using: str) -> tuple[str, tuple]:
    _plain(model)
    meta = model._meta
    fields = tuple(meta.get_field(name) for name in names)
    assignments = ", ".join(f"{_quote(using, f.column)} = %s" for f in fields)
    table = _quote(using, meta.db_table)
    return f"UPDATE {table} SET {assignments} WHERE {_quote(using, meta.pk.column)} = %s", fields


def update_by_pk(model: type[models.Model], pk: int, using: str = "default", **values) -> int:
    """`model.objects.filter(pk=pk).update(**values)` for plain values, without compiling a query. Returns the
    number of rows updated (0 or 1)."""
    connection = connections[using]
    sql, fields = _update_sql(model, tuple(values), connection.vendor, using)
    params = [f.get_db_prep_save(v, connection) for f, v in zip(fields, values.values(), strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, pk])
        return cursor.rowcount
