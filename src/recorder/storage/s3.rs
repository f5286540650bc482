//! Recordings in an S3 bucket (placeholder until the S3 backend lands).
