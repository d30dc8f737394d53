-- Code-to-data jobs: a developer's named SQL outputs, submitted from a workspace and run
-- on the full data inside the domain (the developer never sees those rows). Each job is
-- queued, claimed by one runner, and finishes done, failed or cancelled; its attempts
-- count survives restarts so a job that keeps crashing the runner stops being retried.
-- Each named output is staged encrypted in the vault under its own wrapped key, with the
-- disclosure gate's verdict, report and evidence beside it; nothing of it is shown to the
-- developer before release.

CREATE TABLE jobs (
    id             TEXT PRIMARY KEY,
    workspace_id   TEXT NOT NULL REFERENCES workspaces (id),
    request_id     TEXT NOT NULL,
    agreement_id   TEXT NOT NULL,
    org_id         TEXT NOT NULL REFERENCES orgs (id),
    submitted_by   TEXT NOT NULL,
    spec_json      TEXT NOT NULL,
    state          TEXT NOT NULL,
    reason         TEXT,
    metering_json  TEXT,
    attempts       BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    started_at     BIGINT,
    finished_at    BIGINT
);
CREATE INDEX jobs_workspace ON jobs (workspace_id);
CREATE INDEX jobs_state ON jobs (state);

CREATE TABLE job_outputs (
    job_id         TEXT NOT NULL REFERENCES jobs (id),
    name           TEXT NOT NULL,
    verdict        TEXT NOT NULL,
    rows           BIGINT NOT NULL,
    bytes          BIGINT NOT NULL,
    report_json    TEXT NOT NULL,
    evidence_json  TEXT NOT NULL,
    object_path    TEXT,
    wrapped_key    TEXT,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (job_id, name)
);
