#!/bin/sh
# Creates the zones' buckets on the compose MinIO (s3__local), then exits.
#
# docker-compose runs this once per `up` (service s3__local_init) with the same S3_BUCKET_*
# and credentials the app containers get, so the buckets always match what the app uses.
# It must be safe to repeat: existing buckets (and their objects) are left alone.
set -eu

: "${S3_ENDPOINT_URL:?set by docker-compose.yml}"
: "${AWS_ACCESS_KEY_ID:?set by docker-compose.yml}"
: "${AWS_SECRET_ACCESS_KEY:?set by docker-compose.yml}"

mc alias set s3local "$S3_ENDPOINT_URL" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >/dev/null

# One line per zone in data_platform.settings.ZONES; a zone left unset is an error, because
# the app refuses to start with only some S3_BUCKET_* set.
for bucket in \
    "${S3_BUCKET_INCOMING:?}" \
    "${S3_BUCKET_ARCHIVE:?}" \
    "${S3_BUCKET_ERROR:?}" \
    "${S3_BUCKET_SPRINGBOARD:?}" \
    "${S3_BUCKET_OPERATIONS:?}"; do
    mc mb --ignore-existing "s3local/$bucket"
done
