-- Datasets, their immutable versions in the vault, and import error reports.

CREATE TABLE datasets (
    id               TEXT PRIMARY KEY,
    org_id           TEXT NOT NULL REFERENCES orgs (id),
    name             TEXT NOT NULL,
    title            TEXT NOT NULL,
    grade            TEXT NOT NULL,
    status           TEXT NOT NULL,
    current_version  TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX datasets_org_name ON datasets (org_id, name);

-- A version is written once. `wrapped_key` is the version's data key wrapped
-- under the master key; deleting it (and the objects) destroys the version.
CREATE TABLE dataset_versions (
    id                TEXT PRIMARY KEY,
    dataset_id        TEXT NOT NULL REFERENCES datasets (id),
    version_no        BIGINT NOT NULL,
    status            TEXT NOT NULL,
    source_name       TEXT NOT NULL,
    format            TEXT NOT NULL,
    encoding          TEXT NOT NULL,
    rows_read         BIGINT NOT NULL,
    rows_accepted     BIGINT NOT NULL,
    rows_quarantined  BIGINT NOT NULL,
    error_count       BIGINT NOT NULL,
    object_path       TEXT,
    wrapped_key       TEXT,
    bytes             BIGINT NOT NULL,
    quarantine_path   TEXT,
    quarantine_key    TEXT,
    columns_json      TEXT NOT NULL,
    grade             TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    created_by        TEXT NOT NULL,
    decided_at        BIGINT,
    decided_by        TEXT
);
CREATE UNIQUE INDEX dataset_versions_no ON dataset_versions (dataset_id, version_no);

CREATE TABLE import_errors (
    version_id    TEXT NOT NULL REFERENCES dataset_versions (id),
    row_no        BIGINT NOT NULL,
    field         TEXT NOT NULL,
    rule          TEXT NOT NULL,
    value_digest  TEXT NOT NULL
);
CREATE INDEX import_errors_version ON import_errors (version_id, row_no);
