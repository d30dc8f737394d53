-- Products: a released job output published into the public product catalog (R-22) as a
-- dataset or a report, with the scenario it was made for, the source versions it was
-- computed from, and the terms under which it is used. One product per release: the
-- product's content is the release's watermarked copy, minted again on every download.
-- A product is listed until its publisher delists it (the agreement chain falling out of
-- force delists it too, which the engine works out when it reads the product).

CREATE TABLE products (
    id                  TEXT PRIMARY KEY,
    release_id          TEXT NOT NULL UNIQUE REFERENCES releases (id),
    kind                TEXT NOT NULL,
    title               TEXT NOT NULL,
    summary             TEXT NOT NULL,
    terms               TEXT NOT NULL,
    request_id          TEXT NOT NULL,
    scenario            TEXT NOT NULL,
    maker_org_id        TEXT NOT NULL REFERENCES orgs (id),
    publisher_org_id    TEXT NOT NULL REFERENCES orgs (id),
    published_by        TEXT NOT NULL,
    access              TEXT NOT NULL,
    sources_json        TEXT NOT NULL,
    columns_json        TEXT NOT NULL,
    row_count           BIGINT NOT NULL,
    state               TEXT NOT NULL,
    delist_reason       TEXT,
    published_at        BIGINT NOT NULL,
    delisted_at         BIGINT
);
CREATE INDEX products_state ON products (state);
CREATE INDEX products_request ON products (request_id);
