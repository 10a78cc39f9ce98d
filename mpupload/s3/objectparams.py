"""The parameters every object request carries, built in one place from the object settings
(settings/objects.py): PutObject (lean or botocore) and CreateMultipartUpload take `write()`; UploadPart,
ListParts and CompleteMultipartUpload take `part()`; HeadObject and GetObject take `read()`. The preflight's
write probe and the checksum probe write with `write()` too, so a bucket policy that refuses writes without
(say) `x-amz-server-side-encryption: aws:kms` refuses neither the probes nor the upload.

`ExpectedBucketOwner` and `RequestPayer` go on every request botocore takes them for: `install_request_params`
adds them to whatever a client sends (listings, HEADs, aborts, deletes included); the lean PUT gets them from
`write()` / `part()` like any other header.

Built once per process: the SSE-C key is read from its file here, kept in this object only, and handed to
botocore (which sends it base64-encoded with its MD5) or to the lean PUT's header mapping (transport.py).
"""

from __future__ import annotations

from typing import Any

from mpupload.core.contenttypes import content_type_for
from mpupload.settings.config import SMALL_OBJECT_SIZE, Settings
from mpupload.settings.objects import encode_tags, parse_metadata, parse_tags, read_sse_c_key


def request_params(s: Settings) -> dict[str, str]:
    """ExpectedBucketOwner / RequestPayer: for every request that takes them."""
    out: dict[str, str] = {}
    if s.expected_bucket_owner:
        out["ExpectedBucketOwner"] = s.expected_bucket_owner
    if s.request_payer:
        out["RequestPayer"] = s.request_payer
    return out


def install_request_params(client, s: Settings) -> None:
    """Make `client` add request_params(s) to every operation whose input has them (HeadBucket takes only the
    owner), unless the call gives its own."""
    extra = request_params(s)
    if not extra:
        return

    def add(params: dict, model, **_kwargs) -> None:
        shape = model.input_shape
        members = shape.members if shape is not None else {}
        for name, value in extra.items():
            if name in members:
                params.setdefault(name, value)

    client.meta.events.register("before-parameter-build.s3", add, unique_id="mpupload-request-params")


class ObjectParams:
    """What each object request carries. Thread-safe (read-only once built)."""

    def __init__(self, s: Settings):
        self.s = s
        request = request_params(s)
        sse_c: dict[str, Any] = {}
        if s.sse_c_key_file:
            # Raw bytes: botocore base64-encodes them and adds the MD5 (its sse_md5 handler); so does the
            # lean PUT's header mapping.
            sse_c = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": read_sse_c_key(s.sse_c_key_file)}
        writes: dict[str, Any] = {}
        if s.sse:
            writes["ServerSideEncryption"] = s.sse
        if s.sse_kms_key_id:
            writes["SSEKMSKeyId"] = s.sse_kms_key_id
        if s.sse_bucket_key:
            writes["BucketKeyEnabled"] = True
        if s.acl:
            writes["ACL"] = s.acl
        if s.tags:
            writes["Tagging"] = encode_tags(parse_tags(s.tags))
        for param, value in (("CacheControl", s.cache_control), ("ContentEncoding", s.content_encoding),
                             ("ContentDisposition", s.content_disposition)):
            if value:
                writes[param] = value
        self._write = {**writes, **sse_c, **request}
        self._part = {**sse_c, **request}
        self._user_metadata = dict(parse_metadata(s.metadata))
        self._small_below = s.small_object_size if s.small_object_size is not None else SMALL_OBJECT_SIZE

    @property
    def sse_c(self) -> bool:
        return "SSECustomerKey" in self._part

    def storage_class(self, size: int) -> str | None:
        if self.s.small_storage_class and size < self._small_below:
            return self.s.small_storage_class
        return self.s.storage_class

    def write(self, *, name: str, size: int, metadata: dict[str, str]) -> dict[str, Any]:
        """PutObject / CreateMultipartUpload parameters for an object of `size` bytes from the file `name`
        (its suffix picks the content type): the user's metadata with mpupload's own `metadata` over it."""
        params = dict(self._write)
        params["Metadata"] = {**self._user_metadata, **metadata}
        ctype = self.s.content_type or content_type_for(name)
        if ctype:
            params["ContentType"] = ctype
        cls = self.storage_class(size)
        if cls:
            params["StorageClass"] = cls
        return params

    def part(self) -> dict[str, Any]:
        """UploadPart, ListParts, CompleteMultipartUpload: the SSE-C key (S3 wants it on each part) and the
        request parameters."""
        return dict(self._part)

    def read(self) -> dict[str, Any]:
        """HeadObject, GetObject (and s3transfer's download extra_args): an SSE-C object cannot be read or even
        HEADed without its key."""
        return dict(self._part)
