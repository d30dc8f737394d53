-- Data requests (一场景一清单一审核, R-24): one per approved scenario of an agreement,
-- with the list under review, and the scenario manifests issued for each approved
-- revision (signed by the domain; any change is a new revision and a new review).

CREATE TABLE data_requests (
    id             TEXT PRIMARY KEY,
    agreement_id   TEXT NOT NULL REFERENCES agreements (id),
    scenario       TEXT NOT NULL,
    requester_org  TEXT NOT NULL REFERENCES orgs (id),
    state          TEXT NOT NULL,
    machine_json   TEXT NOT NULL,
    reviewers_json TEXT NOT NULL,
    body_json      TEXT NOT NULL,
    note           TEXT,
    created_at     BIGINT NOT NULL,
    created_by     TEXT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX data_requests_scenario ON data_requests (agreement_id, scenario);
CREATE INDEX data_requests_requester ON data_requests (requester_org);

CREATE TABLE scenario_manifests (
    request_id     TEXT NOT NULL REFERENCES data_requests (id),
    revision       BIGINT NOT NULL,
    manifest_json  TEXT NOT NULL,
    digest         TEXT NOT NULL,
    signature      TEXT NOT NULL,
    issued_at      BIGINT NOT NULL,
    PRIMARY KEY (request_id, revision)
);

-- Rectification (整改, R-17) of an agreement, keyed by the agreement's application: the
-- open case and the closed ones, as the workflow's typed state in JSON.
CREATE TABLE agreement_rectifications (
    application_id  TEXT PRIMARY KEY REFERENCES applications (id),
    state_json      TEXT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- Custom processing requests (定制化服务需求, R-26): asked under an agreement of the
-- requester, served by the agreement's grantor (the authority for an operator, the
-- operator for a developer) at the cost the requester accepted, billed on delivery.
CREATE TABLE custom_requests (
    id             TEXT PRIMARY KEY,
    agreement_id   TEXT NOT NULL REFERENCES agreements (id),
    requester_org  TEXT NOT NULL REFERENCES orgs (id),
    provider_org   TEXT NOT NULL REFERENCES orgs (id),
    title          TEXT NOT NULL,
    body_json      TEXT NOT NULL,
    state          TEXT NOT NULL,
    machine_json   TEXT NOT NULL,
    wanted_by      TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    created_by     TEXT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX custom_requests_requester ON custom_requests (requester_org);
CREATE INDEX custom_requests_provider ON custom_requests (provider_org);

-- Attachments of applications (certificates, security assessments …): small files kept
-- with their SHA-256, which the application's audit entry records.
CREATE TABLE application_attachments (
    id              TEXT PRIMARY KEY,
    application_id  TEXT NOT NULL REFERENCES applications (id),
    name            TEXT NOT NULL,
    media_type      TEXT NOT NULL,
    size            BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    content_b64     TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    created_by      TEXT NOT NULL
);
CREATE INDEX application_attachments_app ON application_attachments (application_id);
