-- The catalog chain (R-18…R-23): resource, operation, development and social
-- data catalog entries, one table; what differs by kind is in `body_json`
-- (a typed struct of the catalog crate), what is queried is in columns.

CREATE TABLE catalog_entries (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    org_id        TEXT NOT NULL REFERENCES orgs (id),
    parent_id     TEXT REFERENCES catalog_entries (id),
    dataset_id    TEXT REFERENCES datasets (id),
    title         TEXT NOT NULL,
    state         TEXT NOT NULL,
    revision      BIGINT NOT NULL,
    body_json     TEXT NOT NULL,
    note          TEXT,
    created_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    decided_at    BIGINT,
    decided_by    TEXT,
    published_at  BIGINT
);
CREATE INDEX catalog_entries_kind ON catalog_entries (kind, state);
CREATE INDEX catalog_entries_parent ON catalog_entries (parent_id);

-- Governance requests and objections against a dataset (R-25): the provider
-- answers by a deadline; overdue items show on the authority's dashboard.
CREATE TABLE governance_items (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    dataset_id       TEXT NOT NULL REFERENCES datasets (id),
    provider_org_id  TEXT NOT NULL REFERENCES orgs (id),
    raised_by        TEXT NOT NULL,
    raised_by_org    TEXT NOT NULL,
    subject          TEXT NOT NULL,
    detail           TEXT NOT NULL,
    field            TEXT,
    state            TEXT NOT NULL,
    deadline         BIGINT NOT NULL,
    answer           TEXT,
    outcome          TEXT,
    answered_at      BIGINT,
    answered_by      TEXT,
    closed_at        BIGINT,
    created_at       BIGINT NOT NULL
);
CREATE INDEX governance_items_provider ON governance_items (provider_org_id, state);
CREATE INDEX governance_items_deadline ON governance_items (state, deadline);
