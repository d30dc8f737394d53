-- Developer workspaces (one per approved data request of a scenario) and their masked
-- samples. A sample's rows live encrypted in the vault under its own wrapped key;
-- the workspace's keys (pseudonyms, tokens, draws) are wrapped under the master key;
-- this table holds where, how it was built (spec, fields with their techniques), its
-- measured re-identification risk and the dataset version it derives from (lineage).

CREATE TABLE workspaces (
    id               TEXT PRIMARY KEY,
    request_id       TEXT NOT NULL REFERENCES data_requests (id),
    agreement_id     TEXT NOT NULL,
    org_id           TEXT NOT NULL REFERENCES orgs (id),
    scenario         TEXT NOT NULL,
    manifest_digest  TEXT NOT NULL,
    keys_wrapped     TEXT NOT NULL,
    state            TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX workspaces_request ON workspaces (request_id);

CREATE TABLE samples (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces (id),
    table_name       TEXT NOT NULL,
    dataset_id       TEXT NOT NULL REFERENCES datasets (id),
    version_id       TEXT NOT NULL REFERENCES dataset_versions (id),
    spec_json        TEXT NOT NULL,
    fields_json      TEXT NOT NULL,
    risk_json        TEXT NOT NULL,
    status           TEXT NOT NULL,
    source_rows      BIGINT NOT NULL,
    sample_rows      BIGINT NOT NULL,
    object_path      TEXT,
    wrapped_key      TEXT,
    created_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX samples_workspace_table ON samples (workspace_id, table_name);
