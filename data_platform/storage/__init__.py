"""Object storage in zones (incoming, archive, error, springboard, operations).

Each zone is a bucket plus a prefix. Two backends share one interface: boto3 against S3
(or MinIO, or moto), and a local directory store with the same semantics.
"""

from data_platform.storage.base import ObjectChangedError, ObjectInfo, ObjectStore
from data_platform.storage.zones import ZoneStore, get_zone

__all__ = ["ObjectChangedError", "ObjectInfo", "ObjectStore", "ZoneStore", "get_zone"]
