"""The summary of a run as plain values: what the JSON summary line, the event log's last line, the progress
file and report.json all say. Data, not drawing: the views in ui/ lay it out."""

from __future__ import annotations

from mpupload.observe.stats import Snapshot, TransportTally


def transport_summary(t: TransportTally) -> dict:
    """Requests sent lean and through botocore, lean requests declined (by reason), processes whose lean path
    was off (by reason), and the transport checksum used (the one most processes chose)."""
    return {
        "lean": t.lean, "botocore": t.botocore,
        "declined": sum(t.declined.values()), "declined_by_reason": dict(sorted(t.declined.items())),
        "lean_off": dict(sorted(t.lean_off.items())),
        "checksum": t.checksum.most_common(1)[0][0] if t.checksum else None,
        # "CRC64NVME FULL_OBJECT" where the server keeps a whole-object checksum (fullprobe.py), else composite
        "multipart_checksum": t.multipart_checksum.most_common(1)[0][0] if t.multipart_checksum else None,
    }


def summary_dict(s: Snapshot, *, interrupted: str | bool = False, fatal: str | None = None) -> dict:
    res = s.resources
    return {
        "event": "summary",
        "uploaded": s.uploaded, "skipped": s.skipped, "failed": s.failed,
        "found": s.found_files, "not_done": s.pending,
        "bytes": s.bytes_uploaded, "bytes_skipped": s.bytes_skipped, "bytes_failed": s.bytes_failed,
        "bytes_found": s.found_bytes,
        "bytes_sent": s.bytes_sent, "parts_reused": s.parts_reused,
        "worker_restarts": s.worker_restarts,
        "seconds": round(s.elapsed, 3),
        "files_per_min": round(s.uploaded / s.elapsed * 60, 1) if s.elapsed > 0 else 0.0,
        "mb_per_s": round(s.bytes_uploaded / s.elapsed / 1e6, 3) if s.elapsed > 0 else 0.0,
        "peak_rss": res.get("peak_rss", 0),
        "throttles": res.get("throttles", 0), "outages": res.get("outages", 0),
        "limit_waits": res.get("limit_waits", 0), "limit_wait_seconds": res.get("limit_wait_seconds", 0.0),
        "partition_pauses": res.get("partition_pauses", 0),
        "latency_ms": res.get("latency_ms"), "inflight_per_process": res.get("inflight_limit"),
        "failures_by_reason": {g: n for g, n, _ in s.failure_reasons},
        "skips_by_reason": dict(s.skip_reasons),
        "requests": transport_summary(s.transport),
        **({"delete": s.mirror} if s.mirror else {}),
        "interrupted": bool(interrupted),
        "signal": interrupted if isinstance(interrupted, str) else None,
        "fatal": fatal,
    }
