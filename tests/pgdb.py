"""Fresh PostgreSQL databases on a throw-away cluster, one per test.

A module starts one cluster (:func:`pgcluster.throwaway_cluster`, a few seconds) and each of
its tests gets an empty database of its own on it (:func:`fresh_database`, milliseconds), so
tests never see each other's tables and a cluster is not started per test.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from frontdesk.store.postgres._cluster import LocalPostgres

_numbers = itertools.count(1)


def database_url(cluster: LocalPostgres, database: str) -> str:
    """The URL of ``database`` on ``cluster``, as its superuser."""
    return cluster.url.rsplit("/", 1)[0] + f"/{database}"


def superuser(cluster: LocalPostgres, database: str = "frontdesk") -> psycopg.Connection[object]:
    """An autocommit connection to ``database`` as the cluster's superuser."""
    return psycopg.connect(database_url(cluster, database), autocommit=True, connect_timeout=30)


@contextmanager
def fresh_database(cluster: LocalPostgres) -> Iterator[str]:
    """An empty database on ``cluster`` (its URL), dropped afterwards."""
    name = f"test_{os.getpid()}_{next(_numbers)}"
    with superuser(cluster) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(cluster, name)
    finally:
        if cluster.running:
            with superuser(cluster) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
