"""Object storage for recordings: local files or an S3-compatible bucket (shared by the API, the
dispatcher and the transcription replicas)."""
