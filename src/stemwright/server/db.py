"""The studio's library: an embedded SQLite database with forward-only schema migrations.

``PRAGMA user_version`` records the schema version; :data:`MIGRATIONS` lists the SQL that takes version ``i`` to
``i + 1``. A new column or table is a new entry at the end, never an edit of an old one.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator
from contextlib import contextmanager

MIGRATIONS: list[str] = [
    # 1: first schema
    """
    CREATE TABLE songs (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        original_name TEXT NOT NULL,
        source_path TEXT NOT NULL,
        samplerate INTEGER NOT NULL,
        channels INTEGER NOT NULL,
        duration REAL NOT NULL,
        size_bytes INTEGER NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        song_id TEXT NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL,
        progress REAL NOT NULL DEFAULT 0,
        stage TEXT NOT NULL DEFAULT '',
        error TEXT,
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        seconds REAL
    );
    CREATE TABLE stems (
        song_id TEXT NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
        job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        samplerate INTEGER NOT NULL,
        PRIMARY KEY (job_id, name)
    );
    CREATE TABLE mixes (
        id TEXT PRIMARY KEY,
        song_id TEXT NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        document TEXT NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE INDEX jobs_song ON jobs(song_id);
    CREATE INDEX mixes_song ON mixes(song_id);
    """,
    # 2: song analysis (tempo, beats, downbeats, meter, key), once per separation
    """
    CREATE TABLE analyses (
        job_id TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
        song_id TEXT NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
        document TEXT NOT NULL,
        created REAL NOT NULL
    );
    """,
    # 3: a song whose source file cannot be decoded to its end (found by a job): the reason, and no Re-run
    """
    ALTER TABLE songs ADD COLUMN unreadable TEXT;
    """,
]

JOB_STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")


def interrupted_message(status: str, progress: float) -> str:
    """What a job stopped by a shutdown was doing, for the library row."""
    if status == "running":
        return f"the server stopped while this job was running (at {round(100 * float(progress or 0))} %)"
    return "the server stopped before this job started (it was queued)"


def new_id() -> str:
    return uuid.uuid4().hex


class Library:
    """Thread-safe access to the studio database (one connection, serialised by a lock)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self.migrate()

    # -- schema ---------------------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        with self._lock:
            version = self.schema_version
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.path}: database schema version {version} is newer than this stemwright ({len(MIGRATIONS)})"
                )
            for i in range(version, len(MIGRATIONS)):
                self._conn.executescript("BEGIN;" + MIGRATIONS[i] + f";PRAGMA user_version = {i + 1};COMMIT;")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def query(self, sql: str, args: tuple = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql, args).fetchall()]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- songs ----------------------------------------------------------------------------------------------
    def add_song(self, **fields: Any) -> str:
        sid = fields.pop("id", None) or new_id()
        fields.setdefault("created", time.time())
        cols = ["id", *fields]
        with self.tx() as c:
            c.execute(
                f"INSERT INTO songs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", (sid, *fields.values())
            )
        return sid

    def song(self, song_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM songs WHERE id = ?", (song_id,))
        return rows[0] if rows else None

    def songs(self) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM songs ORDER BY created DESC")

    def set_source_path(self, song_id: str, path: str) -> None:
        with self.tx() as c:
            c.execute("UPDATE songs SET source_path = ? WHERE id = ?", (path, song_id))

    def mark_unreadable(self, song_id: str, reason: str) -> None:
        """The song's source cannot be decoded (a job found it): ``reason`` is shown and Re-run is not offered."""
        with self.tx() as c:
            c.execute("UPDATE songs SET unreadable = ? WHERE id = ?", (reason, song_id))

    def delete_song(self, song_id: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM songs WHERE id = ?", (song_id,))

    # -- jobs -----------------------------------------------------------------------------------------------
    def add_job(self, song_id: str, model: str, params: dict[str, Any]) -> str:
        jid = new_id()
        with self.tx() as c:
            c.execute(
                "INSERT INTO jobs (id, song_id, model, params, status, created) VALUES (?, ?, ?, ?, 'queued', ?)",
                (jid, song_id, model, json.dumps(params), time.time()),
            )
        return jid

    def job(self, job_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job_row(rows[0]) if rows else None

    def jobs_for(self, song_id: str) -> list[dict[str, Any]]:
        return [_job_row(r) for r in self.query("SELECT * FROM jobs WHERE song_id = ? ORDER BY created", (song_id,))]

    def update_job(self, job_id: str, **fields: Any) -> None:
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.tx() as c:
            c.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), job_id))

    def mark_interrupted(self) -> list[str]:
        """Jobs left 'running' or 'queued' (by a server that died, at start-up; by a shutdown, at its end) are
        marked interrupted, with what they were doing: "running at 60 %" or "queued"."""
        with self.tx() as c:
            rows = c.execute("SELECT id, status, progress FROM jobs WHERE status IN ('running', 'queued')").fetchall()
            for job_id, status, progress in rows:
                c.execute("UPDATE jobs SET status = 'interrupted', stage = 'interrupted', error = ? WHERE id = ?",
                          (interrupted_message(status, progress), job_id))
        return [r[0] for r in rows]

    # -- stems ----------------------------------------------------------------------------------------------
    def set_stems(self, song_id: str, job_id: str, stems: dict[str, str], samplerate: int) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM stems WHERE job_id = ?", (job_id,))
            c.executemany(
                "INSERT INTO stems (song_id, job_id, name, path, samplerate) VALUES (?, ?, ?, ?, ?)",
                [(song_id, job_id, name, path, samplerate) for name, path in stems.items()],
            )

    def stems(self, song_id: str) -> list[dict[str, Any]]:
        """Stems of the song's latest finished job."""
        return self.query(
            "SELECT s.* FROM stems s JOIN jobs j ON j.id = s.job_id WHERE s.song_id = ? AND j.status = 'done' "
            "AND j.finished = (SELECT MAX(finished) FROM jobs WHERE song_id = ? AND status = 'done') ORDER BY s.rowid",
            (song_id, song_id),
        )

    def separations(self, song_id: str) -> list[dict[str, Any]]:
        """Every finished separation of a song that still has stems, newest first: job id, model, finish time,
        stem names (the studio's model comparison)."""
        rows = self.query(
            "SELECT j.id AS job_id, j.model AS model, j.finished AS finished, s.name AS name FROM jobs j "
            "JOIN stems s ON s.job_id = j.id WHERE j.song_id = ? AND j.status = 'done' ORDER BY j.finished DESC, s.rowid",
            (song_id,),
        )
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            entry = out.setdefault(r["job_id"], {"job_id": r["job_id"], "model": r["model"], "finished": r["finished"],
                                                 "stems": []})
            entry["stems"].append(r["name"])
        return list(out.values())

    def job_stems(self, song_id: str, job_id: str) -> list[dict[str, Any]]:
        """The stems of one finished separation job of the song (empty when the job is not one of them)."""
        return self.query(
            "SELECT s.* FROM stems s JOIN jobs j ON j.id = s.job_id WHERE s.song_id = ? AND s.job_id = ? "
            "AND j.status = 'done' ORDER BY s.rowid",
            (song_id, job_id),
        )

    # -- analyses -------------------------------------------------------------------------------------------
    def save_analysis(self, song_id: str, job_id: str, document: dict[str, Any]) -> None:
        with self.tx() as c:
            c.execute("INSERT OR REPLACE INTO analyses (job_id, song_id, document, created) VALUES (?, ?, ?, ?)",
                      (job_id, song_id, json.dumps(document), time.time()))

    def analysis(self, job_id: str) -> dict[str, Any] | None:
        """The stored analysis (``SongAnalysis.to_dict()``) of a separation job's stems, if computed."""
        rows = self.query("SELECT document FROM analyses WHERE job_id = ?", (job_id,))
        return json.loads(rows[0]["document"]) if rows else None

    # -- mixes ----------------------------------------------------------------------------------------------
    def save_mix(self, song_id: str, name: str, document: dict[str, Any], mix_id: str | None = None) -> str:
        now = time.time()
        with self.tx() as c:
            if mix_id and c.execute("SELECT 1 FROM mixes WHERE id = ? AND song_id = ?", (mix_id, song_id)).fetchone():
                c.execute(
                    "UPDATE mixes SET name = ?, document = ?, updated = ? WHERE id = ?",
                    (name, json.dumps(document), now, mix_id),
                )
                return mix_id
            mix_id = new_id()
            c.execute(
                "INSERT INTO mixes (id, song_id, name, document, created, updated) VALUES (?, ?, ?, ?, ?, ?)",
                (mix_id, song_id, name, json.dumps(document), now, now),
            )
        return mix_id

    def mixes(self, song_id: str) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM mixes WHERE song_id = ? ORDER BY updated DESC", (song_id,))
        for r in rows:
            r["document"] = json.loads(r["document"])
        return rows

    def delete_mix(self, mix_id: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM mixes WHERE id = ?", (mix_id,))

    def mix(self, mix_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM mixes WHERE id = ?", (mix_id,))
        if not rows:
            return None
        rows[0]["document"] = json.loads(rows[0]["document"])
        return rows[0]


def _job_row(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["params"] = json.loads(row["params"])
    return row
