"""Does the server take a multipart upload's FULL_OBJECT CRC64NVME checksum?

S3 does (and AWS CLI v2 sends it by default): CreateMultipartUpload with ChecksumAlgorithm=CRC64NVME and
ChecksumType=FULL_OBJECT, a CRC64NVME per part, and on completion the CRC64NVME of the whole object, which S3
checks against the parts and keeps: one checksum a user can compare with the local file's, however the
object was cut. SeaweedFS 4.x checks it too (BadDigest on a wrong value). moto stores what it is given
without checking. Servers that refuse it get the composite per-part checksum of before (transport.py).

The probe, once per run beside the preflight's other probes (or once per worker process when no verdict
comes): one tiny multipart upload to a fixed key under the prefix, completed first with a wrong whole-object
checksum (a checking server refuses it and keeps the upload open), then with the right one, which must come
back as FULL_OBJECT; then the object is deleted. Verdict (xxprobe.SharedVerdict): (True, "") checked;
(True, why) kept but not checked; (False, why) not supported.
"""

from __future__ import annotations

from mpupload.core.objectsum import CRC64NVME, FULL_OBJECT, can_combine, crc64_b64, crc64nvme
from mpupload.s3.probekeys import FULL_CHECKSUM_PROBE_NAME, delete_probe_object, full_checksum_probe_key
from mpupload.s3.xxprobe import SharedVerdict

_BODY = b"mpupload checks whether this server keeps FULL_OBJECT CRC64NVME checksums of multipart uploads\n"
UNCHECKED = "it keeps FULL_OBJECT CRC64NVME checksums without checking them"



def decide_for_run(client, *, bucket: str, prefix: str, verdict: SharedVerdict, objects=None) -> None:
    """Probe, tell the workers, then delete the probe object (they do not wait for that)."""
    try:
        supported, why = _probe(client, bucket=bucket, key=full_checksum_probe_key(prefix), objects=objects)
    except Exception:  # unexpected: every worker then probes for itself
        verdict.ask_workers()
        raise
    verdict.set(supported, why)
    _delete(client, bucket, full_checksum_probe_key(prefix))


def server_keeps_full_object(client, *, bucket: str, prefix: str, objects=None) -> tuple[bool, str]:
    """A worker's own probe: the verdict, the probe object deleted."""
    key = full_checksum_probe_key(prefix)
    try:
        return _probe(client, bucket=bucket, key=key, objects=objects)
    finally:
        _delete(client, bucket, key)


def _probe(client, *, bucket: str, key: str, objects=None) -> tuple[bool, str]:
    # `objects`: the run's ObjectParams (s3/objectparams.py): the probe writes as every object is (a bucket policy
    # may refuse an upload without the run's encryption, an SSE-C upload needs its key on every part).
    write = objects.write(name=FULL_CHECKSUM_PROBE_NAME, size=len(_BODY), metadata={}) if objects else {}
    part_params = objects.part() if objects else {}
    read = objects.read() if objects else {}
    if not can_combine():
        return False, "the installed awscrt has no combine_crc64nvme (pip install -U awscrt)"
    try:
        upload = client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm=CRC64NVME, **write,
                                                ChecksumType=FULL_OBJECT)
    except Exception as exc:  # noqa: BLE001
        return False, f"it refused a FULL_OBJECT CRC64NVME multipart upload ({_code(exc)})"
    upload_id = upload["UploadId"]
    done = False
    try:
        crc = crc64_b64(crc64nvme(_BODY))
        part = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=_BODY, **part_params,
                                  ChecksumCRC64NVME=crc)
        parts = {"Parts": [{"PartNumber": 1, "ETag": part["ETag"], "ChecksumCRC64NVME": crc}]}
        wrong = crc64_b64(crc64nvme(_BODY + b"(not these bytes)"))
        checked = False
        try:
            resp = client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                                    MultipartUpload=parts, **part_params,
                                                    ChecksumCRC64NVME=wrong, ChecksumType=FULL_OBJECT)
            done = True
        except Exception:  # noqa: BLE001 - a refusal is what a checking server answers; the upload stays open
            checked = True
        if checked:
            try:
                resp = client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                                        MultipartUpload=parts, **part_params, ChecksumCRC64NVME=crc,
                                                        ChecksumType=FULL_OBJECT)
                done = True
            except Exception as exc:  # noqa: BLE001
                return False, f"it refused a correct FULL_OBJECT CRC64NVME checksum too ({_code(exc)})"
        sent = crc if checked else wrong
        kept = _kept(client, bucket, key, resp, read)
        if kept != (sent, FULL_OBJECT):
            return False, "it does not keep FULL_OBJECT CRC64NVME checksums of multipart uploads"
        return True, "" if checked else UNCHECKED
    except Exception as exc:  # noqa: BLE001 - a part refused, a HEAD that failed: not usable here
        return False, f"its FULL_OBJECT CRC64NVME multipart upload failed ({_code(exc)})"
    finally:
        if not done:
            try:
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except Exception:  # noqa: BLE001, S110 - an empty upload of one tiny part at worst
                pass


def _kept(client, bucket: str, key: str, resp: dict, read: dict) -> tuple[str | None, str | None]:
    """What the server keeps: the complete's answer, else (moto answers nothing) a HEAD with checksum mode."""
    if resp.get("ChecksumCRC64NVME"):
        return resp["ChecksumCRC64NVME"], resp.get("ChecksumType") or FULL_OBJECT
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED", **read)
    return head.get("ChecksumCRC64NVME"), head.get("ChecksumType")


def _delete(client, bucket: str, key: str) -> None:
    delete_probe_object(client, bucket=bucket, key=key)


def _code(exc: BaseException) -> str:
    from mpupload.core.errors import error_code, http_status

    return error_code(exc) or (f"HTTP {http_status(exc)}" if http_status(exc) else type(exc).__name__)
