-- Frames of an animated original (1 for a still), read from its blocks at upload: `fmt=auto`
-- keeps an animation animated without reading the original first. NULL for images uploaded
-- before the column existed, which negotiate as stills.
ALTER TABLE images ADD COLUMN frames BIGINT;
