"""A lost journal is cheap: the listing's MD5 ETags decide for objects stored by one PUT, so the rerun
sends no HEAD and no PUT for them; only a multipart object (its ETag is not an MD5) is HEADed."""

from __future__ import annotations

import os
import threading

from helpers import MIB, assert_landed, local_files, run_cli, summary_of


def test_a_lost_journal_is_rebuilt_with_no_head_for_single_put_objects(
        tmp_path, s3server, s3client, s3env, bucket, prefix, proxy):
    src = tmp_path / "a"
    for i in range(30):
        p = src / str(1920 + i % 3) / f"p{i:03d}.jp2"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(i * 37))  # 0 bytes included: the MD5 of nothing is an ETag too
    (src / "1944").mkdir()
    (src / "1944" / "atlas.tif").write_bytes(os.urandom(6 * MIB + 5))
    args = ["upload", str(src), f"s3://{bucket}/{prefix}", "--endpoint-url", proxy.endpoint_url, "--json",
            "--multipart-threshold", "5MiB", "--multipart-chunksize", "5MiB", "--processes", "1"]
    assert run_cli(args, s3env).returncode == 0
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def spy(head) -> bool:  # the proxy's refuse rule, refusing nothing: it only notes what is asked
        method, target = head.start_line.split(" ")[:2]
        with lock:
            seen.append((method, target.split("?")[0]))
        return False

    proxy.refuse = spy
    lost = dict(s3env, XDG_STATE_HOME=str(tmp_path / "new-machine"))
    again = run_cli(args, lost)
    assert again.returncode == 0, again.stderr
    s = summary_of(again.stdout)
    assert (s["uploaded"], s["skipped"], s["bytes_sent"]) == (0, 31, 0)
    assert s["skips_by_reason"] == {"already at the destination (same size and MD5)": 30,
                                    "already at the destination (same size and xxh3-128)": 1}
    objects = [(m, t) for m, t in seen if t.startswith(f"/{bucket}/{prefix}/") and ".mpupload-" not in t]
    assert objects == [("HEAD", f"/{bucket}/{prefix}/1944/atlas.tif")]
    seen.clear()
    third = summary_of(run_cli(args, lost).stdout)  # what was learned is journaled
    assert third["skips_by_reason"] == {"unchanged since it was stored (journal)": 31}
    assert not [t for m, t in seen if m == "HEAD" and t.startswith(f"/{bucket}/{prefix}/")]
    assert_landed(s3client, bucket, prefix, local_files(src))
