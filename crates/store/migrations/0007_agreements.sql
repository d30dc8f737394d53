-- Agreements (R-14…R-17) and the public keys users sign them with. A user's
-- private key never reaches the platform: it signs the agreement's digest and
-- the platform verifies against the registered public key.

CREATE TABLE signing_keys (
    user_id     TEXT PRIMARY KEY REFERENCES users (id),
    public_key  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE agreements (
    id               TEXT PRIMARY KEY,
    application_id   TEXT NOT NULL REFERENCES applications (id),
    grantor_org      TEXT NOT NULL REFERENCES orgs (id),
    grantee_org      TEXT NOT NULL REFERENCES orgs (id),
    state            TEXT NOT NULL,
    machine_json     TEXT NOT NULL,
    body_json        TEXT NOT NULL,
    signatures_json  TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    created_by       TEXT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX agreements_application ON agreements (application_id);
