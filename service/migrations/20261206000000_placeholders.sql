-- Placeholders of an image, computed at upload from the pixels validation decodes: a ThumbHash
-- (base64), a BlurHash, and the dominant colour (`#rrggbb`; NULL when no pixel is opaque).
-- NULL for images uploaded before the columns existed, until `pixelmill backfill` fills them
-- (it finds them by a NULL thumbhash).
ALTER TABLE images ADD COLUMN thumbhash TEXT;
ALTER TABLE images ADD COLUMN blurhash TEXT;
ALTER TABLE images ADD COLUMN dominant_color TEXT;
