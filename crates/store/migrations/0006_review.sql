-- Expert review and public notice of applications (R-13). The review and the notice
-- are typed states of the workflow crate, stored as JSON next to their application.

CREATE TABLE application_reviews (
    application_id  TEXT PRIMARY KEY REFERENCES applications (id),
    state_json      TEXT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE application_notices (
    application_id  TEXT PRIMARY KEY REFERENCES applications (id),
    state_json      TEXT NOT NULL,
    updated_at      BIGINT NOT NULL
);

ALTER TABLE applications ADD COLUMN decision_json TEXT;
