-- Releases: a request to let one checked job output leave the domain to a named recipient.
-- The reviewers' structured decisions (YP5(四)'s six points, one entry per reviewer) and
-- any overrides of the gate's findings are kept beside the gate's report, so the release
-- can be explained later. A release moves requested → approved (or rejected) → released;
-- once released it records where the watermarked copy is (encrypted in the vault under its
-- own wrapped key), the watermark spec that marks it for the recipient, and what it
-- revealed — its disclosure ledger entry, against which later releases of the same request
-- are differenced.

CREATE TABLE releases (
    id                  TEXT PRIMARY KEY,
    job_id              TEXT NOT NULL REFERENCES jobs (id),
    output_name         TEXT NOT NULL,
    request_id          TEXT NOT NULL,
    workspace_id        TEXT NOT NULL,
    org_id              TEXT NOT NULL REFERENCES orgs (id),
    requested_by        TEXT NOT NULL,
    recipient           TEXT NOT NULL,
    cross_border        BIGINT NOT NULL,
    remedy              TEXT NOT NULL,
    state               TEXT NOT NULL,
    required_reviewers  BIGINT NOT NULL,
    report_json         TEXT NOT NULL,
    decisions_json      TEXT NOT NULL,
    overrides_json      TEXT NOT NULL,
    mark_spec_json      TEXT,
    ledger_json         TEXT,
    object_path         TEXT,
    wrapped_key         TEXT,
    created_at          BIGINT NOT NULL,
    decided_at          BIGINT
);
CREATE INDEX releases_request ON releases (request_id);
CREATE INDEX releases_state ON releases (state);
CREATE INDEX releases_job ON releases (job_id);
