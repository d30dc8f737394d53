-- The authorization lifecycle (R-11…R-17): calls for applications and the
-- applications to them. What is queried is in columns; the rest is a typed
-- body of the workflow crate in `body_json`.

CREATE TABLE calls (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs (id),
    audience    TEXT NOT NULL,
    title       TEXT NOT NULL,
    state       TEXT NOT NULL,
    deadline    TEXT NOT NULL,
    body_json   TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE applications (
    id            TEXT PRIMARY KEY,
    call_id       TEXT NOT NULL REFERENCES calls (id),
    org_id        TEXT NOT NULL REFERENCES orgs (id),
    state         TEXT NOT NULL,
    body_json     TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    created_by    TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    submitted_at  BIGINT
);
CREATE INDEX applications_call ON applications (call_id);
