-- The catalog's tables. One file for PostgreSQL 15+ and SQLite alike, so only portable DDL:
-- TEXT and BIGINT columns, no serial ids (ids are UUID v7 chosen by the service), and times as
-- BIGINT milliseconds since the Unix epoch rather than a timestamp type.

-- One row per distinct original (by SHA-256 of its bytes). The id is a UUID v7 in simple form, so
-- ordering by id is ordering by creation time: the primary key serves "newest first" listing.
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL UNIQUE,
    format TEXT NOT NULL,
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One row per rendered variant of an image. The primary key's leading image_id also serves
-- "the variants of this image" when an image is deleted. The cascade is a backstop only: SQLite
-- enforces foreign keys only when asked to, so the service deletes variants explicitly.
CREATE TABLE variants (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    variant_key TEXT NOT NULL,
    spec TEXT NOT NULL,
    format TEXT NOT NULL,
    width BIGINT,
    height BIGINT,
    bytes BIGINT,
    blob_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (image_id, variant_key)
);

-- Garbage collection asks, blob by blob, whether any variant still points at a blob key.
CREATE INDEX variants_blob_key ON variants (blob_key);

-- API keys: only a hash of each key is kept. Revoked keys stay, for the audit trail.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
