-- When each variant was last served, so that `pixelmill gc --variants-unused-days N` can remove
-- the variants nobody asked for in N days. Written at insert (the render serves it) and then in
-- batches by the service, at most once a day for a variant: a cache hit costs no write.
-- Variants stored before the column existed count as served when they were made.
ALTER TABLE variants ADD COLUMN last_served_at BIGINT;
UPDATE variants SET last_served_at = created_at;
CREATE INDEX variants_last_served ON variants (last_served_at);
