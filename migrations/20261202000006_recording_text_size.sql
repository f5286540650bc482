-- The length in bytes of a stored recording's decompressed asciicast, written with the
-- recording (NULL on rows stored before it was recorded): a byte range of the asciicast is then
-- decompressed once, up to its end, without first counting the whole text.
ALTER TABLE sessions ADD COLUMN recording_text_size BIGINT;
