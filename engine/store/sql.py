"""The store's SQL: its schema and every statement ``engine.store.db`` runs (no other module
speaks SQL)."""

# Version 2: what each path keeps alive in the action cache ("action:<key>", "blob:<hex>").
KEEPS = (
    """CREATE TABLE keeps (
        path INTEGER NOT NULL REFERENCES paths(id),
        item TEXT NOT NULL,
        PRIMARY KEY (path, item)) WITHOUT ROWID""",
)

SCHEMA = (
    """CREATE TABLE paths (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        derivation TEXT NOT NULL,
        nar_hash TEXT NOT NULL,
        size INTEGER NOT NULL)""",
    # A path may refer to itself; a reference never dangles (checked at statement end).
    """CREATE TABLE refs (
        referrer INTEGER NOT NULL REFERENCES paths(id),
        reference INTEGER NOT NULL REFERENCES paths(id),
        PRIMARY KEY (referrer, reference)) WITHOUT ROWID""",
    "CREATE INDEX refs_reference ON refs(reference)",
    """CREATE TABLE files (
        path INTEGER NOT NULL REFERENCES paths(id),
        file TEXT NOT NULL,
        type TEXT NOT NULL,
        mode INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        target TEXT NOT NULL,
        size INTEGER NOT NULL,
        PRIMARY KEY (path, file)) WITHOUT ROWID""",
    "CREATE TABLE logs (path INTEGER PRIMARY KEY REFERENCES paths(id), log BLOB NOT NULL)",
    """CREATE TABLE roots (
        name TEXT PRIMARY KEY,
        path INTEGER NOT NULL REFERENCES paths(id)) WITHOUT ROWID""",
    *KEEPS,
)

ID = "SELECT id FROM paths WHERE name = ?"
PATH = "SELECT id, derivation, nar_hash, size FROM paths WHERE name = ?"
NAMES = "SELECT name FROM paths"
COUNT = "SELECT count(*) FROM paths"
PATHS = "SELECT id, name, derivation, nar_hash, size FROM paths ORDER BY name"
# ``id`` grows with each registration (a new row takes one more than the largest), so this is
# the order the existing paths became valid in, newest first.
HISTORY = "SELECT name, derivation FROM paths ORDER BY id DESC"
REFS_OF = ("SELECT p.name FROM refs r JOIN paths p ON p.id = r.reference "
            "WHERE r.referrer = ? ORDER BY p.name")
ALL_REFS = ("SELECT a.name, b.name FROM refs r JOIN paths a ON a.id = r.referrer "
             "JOIN paths b ON b.id = r.reference")
INSERT_PATH = "INSERT INTO paths (name, derivation, nar_hash, size) VALUES (?, ?, ?, ?)"
INSERT_REF = "INSERT OR IGNORE INTO refs (referrer, reference) VALUES (?, ?)"
INSERT_FILE = ("INSERT INTO files (path, file, type, mode, sha256, target, size) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)")
INSERT_LOG = "INSERT INTO logs (path, log) VALUES (?, ?)"
FILES = "SELECT file, type, mode, sha256, target, size FROM files WHERE path = ? ORDER BY file"
# What ``store verify`` compares with a tree beyond its NAR hash (``engine/store/fingerprint.py``):
# every entry's path and mode, in the order of the paths' ids and files, built by SQLite into
# one string (a Python object per row cost 4 times as much: 0.45 s for 10,000 paths).
MODE = "f.file || char(0) || f.mode || char(0)"
ALL_SHAPES = (f"SELECT group_concat(shape, '') FROM (SELECT {MODE} AS shape FROM files f "
               "ORDER BY f.path, f.file)")
SHAPES = (f"SELECT p.name, group_concat(shape, '') FROM (SELECT f.path, {MODE} AS shape "
           "FROM files f ORDER BY f.path, f.file) JOIN paths p ON p.id = path GROUP BY path")
# Names and NAR hashes as one string each, split in Python (a Python object per row: 15 ms
# for 10,000 paths; names alone this way: 3 ms, before ``store verify`` can start its workers).
VALID = "SELECT count(*), group_concat(name, char(10)) FROM (SELECT name FROM paths ORDER BY id)"
RECORDED = "SELECT count(*), group_concat(name, char(10)), group_concat(nar_hash, char(10)) " \
    "FROM paths"
LOG = "SELECT l.log FROM logs l JOIN paths p ON p.id = l.path WHERE p.name = ?"
INSERT_KEEP = "INSERT OR IGNORE INTO keeps (path, item) VALUES (?, ?)"
# What each path keeps of one kind ("action:" or "blob:", ?1), the prefix cut off: one row a
# path, its items joined by newlines (neither a key nor a digest holds one), so that a store of
# a million kept blobs makes 10,000 rows, not a million tuples of two strings.
KEPT = """SELECT p.name, group_concat(substr(k.item, length(?1) + 1), char(10))
    FROM keeps k JOIN paths p ON p.id = k.path
    WHERE substr(k.item, 1, length(?1)) = ?1 GROUP BY k.path"""
DELETE = ("DELETE FROM refs WHERE referrer = ?", "DELETE FROM files WHERE path = ?",
           "DELETE FROM keeps WHERE path = ?",
           "DELETE FROM logs WHERE path = ?", "DELETE FROM paths WHERE id = ?")
SET_ROOT = "INSERT OR REPLACE INTO roots (name, path) VALUES (?, ?)"
DELETE_ROOT = "DELETE FROM roots WHERE name = ?1 OR substr(name, 1, length(?1) + 1) = ?1 || '/'"
ROOTS = "SELECT r.name, p.name FROM roots r JOIN paths p ON p.id = r.path ORDER BY r.name"
