-- The tamper-evident audit log (R-34), its Merkle tree, signed checkpoints,
-- witness cosignatures, payload retention and the lineage graph.

-- One row per entry. `line` is the entry's canonical JSON exactly as hashed
-- into the Merkle leaf `leaf` (level 0 of the tree); the other columns copy
-- fields out of it for search.
CREATE TABLE audit_entries (
    seq            BIGINT PRIMARY KEY,
    leaf           BYTEA NOT NULL,
    time           BIGINT NOT NULL,
    actor_user     TEXT,
    actor_org      TEXT,
    action         TEXT NOT NULL,
    object_type    TEXT NOT NULL,
    object_id      TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    request_id     TEXT,
    retention_tag  TEXT,
    line           TEXT NOT NULL
);
CREATE INDEX audit_entries_time ON audit_entries (time);
CREATE INDEX audit_entries_actor ON audit_entries (actor_user, seq);
CREATE INDEX audit_entries_action ON audit_entries (action, seq);
CREATE INDEX audit_entries_object ON audit_entries (object_type, object_id, seq);
CREATE INDEX audit_entries_retention ON audit_entries (retention_tag) WHERE retention_tag IS NOT NULL;

-- Purgeable details of an entry (may hold personal data). Purging keeps the
-- digest, which the entry commits to, so proofs still verify.
CREATE TABLE audit_payloads (
    seq        BIGINT PRIMARY KEY REFERENCES audit_entries (seq),
    digest     TEXT NOT NULL,
    body       TEXT,
    purged_at  BIGINT
);

-- Every perfect subtree of the Merkle tree above the leaves: (level, idx)
-- covers leaves [idx * 2^level, (idx + 1) * 2^level), level >= 1. The leaves
-- (level 0) are audit_entries.leaf. `block` is the first covered leaf divided
-- by 1024: keying by it first keeps the nodes one proof needs below level 10
-- (the levels not cached in memory) next to each other on disk.
CREATE TABLE audit_nodes (
    block  BIGINT NOT NULL,
    level  BIGINT NOT NULL,
    idx    BIGINT NOT NULL,
    hash   BYTEA NOT NULL,
    PRIMARY KEY (block, level, idx)
);

-- Signed tree heads.
CREATE TABLE audit_checkpoints (
    size        BIGINT PRIMARY KEY,
    checkpoint  TEXT NOT NULL,
    signed_at   BIGINT NOT NULL
);

-- Witnesses' countersignatures of checkpoints.
CREATE TABLE audit_cosignatures (
    size         BIGINT NOT NULL REFERENCES audit_checkpoints (size),
    key_id       TEXT NOT NULL,
    witness      TEXT NOT NULL,
    cosignature  TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (size, key_id)
);

-- Retention of payloads tied to something that ends (an agreement): kept
-- until `retain_until`, then purged.
CREATE TABLE audit_retention (
    tag            TEXT PRIMARY KEY,
    ended_at       BIGINT NOT NULL,
    retain_until   BIGINT NOT NULL
);

-- The lineage graph: typed nodes and the derivations between them, each
-- written with the audit entry that recorded it.
CREATE TABLE lineage_nodes (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    ref_id      TEXT NOT NULL,
    first_seq   BIGINT NOT NULL
);
CREATE TABLE lineage_edges (
    src       TEXT NOT NULL REFERENCES lineage_nodes (id),
    dst       TEXT NOT NULL REFERENCES lineage_nodes (id),
    relation  TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (src, dst, relation)
);
CREATE INDEX lineage_edges_dst ON lineage_edges (dst);
