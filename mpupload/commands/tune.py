"""`mpupload tune`: upload a sample of the source to a scratch prefix under a sweep of processes,
threads and part sizes within a time budget, watch CPU and network, recommend settings and say why,
then delete every scratch object.

The sample is a folder of symlinks to real source files (so the trials read the same bytes from the
same disk), uploaded with the real coordinator and worker processes. Each trial is measured by wall
time, the CPU of this process and its reaped workers (rusage), the machine's CPU (psutil) and the bytes
the network interfaces sent.
"""

from __future__ import annotations

import os
import resource
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from mpupload.core.stopping import Interrupted
from mpupload.observe.sinks import Sink
from mpupload.pace.concurrency import MAX_INFLIGHT, initial_inflight
from mpupload.run.autotune import SizeMix, choose
from mpupload.settings.config import MIB, Settings
from mpupload.source.filters import Filters
from mpupload.source.scan import FileEntry, scan

SAMPLE_MAX_FILES = 400
SAMPLE_MAX_BYTES = 256 * MIB
SAMPLE_MAX_LARGE = 2
BUSY_CPU = 0.85  # machine CPU share above which more concurrency cannot help


@dataclass(frozen=True)
class Trial:
    processes: int
    threads: int
    chunksize: int
    seconds: float = 0.0
    files: int = 0
    nbytes: int = 0
    failed: int = 0
    client_cpu_s: float = 0.0
    machine_cpu: float = 0.0  # 0..1, all cores, during the trial
    net_mb_per_s: float = 0.0
    peak_rss: int = 0

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / 1e6 / self.seconds if self.seconds else 0.0

    def label(self) -> str:
        return f"{self.processes}x{self.threads}, parts {self.chunksize // MIB} MiB"


@dataclass(frozen=True)
class Recommendation:
    processes: int
    threads: int
    chunksize: int
    bound: str  # link-latency-bound | client-CPU-bound | machine-CPU-bound | bandwidth-bound | server-bound | ...
    why: str
    trials: tuple[Trial, ...]


def make_sample(settings: Settings, folder: Path, *, max_files: int = SAMPLE_MAX_FILES,
                max_bytes: int = SAMPLE_MAX_BYTES) -> SizeMix:
    """Symlink a bounded sample of the source into folder: the first small files, and up to two large
    ones so part sizes can be compared. Returns the sample's mix."""
    small = [0, 0]
    large = [0, 0]
    for item in scan(settings.source, follow_symlinks=settings.follow_symlinks,
                     filters=Filters.from_settings(settings)):
        if not isinstance(item, FileEntry):
            continue
        is_large = item.size >= settings.multipart_threshold
        if is_large and large[0] >= SAMPLE_MAX_LARGE:
            continue
        if not is_large and (small[0] >= max_files or small[1] + item.size > max_bytes):
            if large[0] >= SAMPLE_MAX_LARGE:
                break
            continue
        target = folder / item.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(item.path)
        bucket = large if is_large else small
        bucket[0] += 1
        bucket[1] += item.size
        if small[0] >= max_files and large[0] >= SAMPLE_MAX_LARGE:
            break
    return SizeMix(small[0], small[1], large[0], large[1], complete=True)


def thread_counts(latency: float | None) -> list[int]:
    """Requests in flight per process to try, most promising first: what the link needs by Little's law
    (concurrency.py), then half and twice that, then the loopback values."""
    need = initial_inflight(latency, cap=MAX_INFLIGHT * 2)
    order = [need, min(2 * need, MAX_INFLIGHT * 2), max(4, need // 2), 8, 16, 4]
    return list(dict.fromkeys(order))


def candidates(*, cpus: int, mix: SizeMix, base_chunk: int, latency: float | None = None) -> Iterator[tuple[int, int, int]]:
    """Settings to try, most promising first: autotune's processes with the threads the link needs, then
    neighbours, then part sizes."""
    first = choose(cpus=cpus, mix=mix)
    # The sample stands for a bigger job: no "small job in the coordinator's process" (processes 0) here.
    p0 = max(1, first.processes)
    threads = thread_counts(latency)
    seen: set[tuple[int, int, int]] = set()
    procs = sorted({p0, 1, max(2, cpus), 2 * max(2, cpus)}, key=lambda p: abs(p - p0))
    order = [(p0, threads[0])]
    order += [(p, t) for p in procs for t in threads if (p, t) != order[0]]
    chunks = [base_chunk] + ([c for c in (16 * MIB, 64 * MIB) if c != base_chunk] if mix.large_files else [])
    for p, t in order[:1]:
        for c in chunks:
            seen.add((p, t, c))
            yield p, t, c
    for p, t in order[1:]:
        if (p, t, base_chunk) not in seen:
            seen.add((p, t, base_chunk))
            yield p, t, base_chunk


def _cpu_self_and_children() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _net_sent() -> int:
    try:
        return psutil.net_io_counters().bytes_sent
    except Exception:  # some containers hide /proc/net
        return 0


def run_trial(settings: Settings, *, processes: int, threads: int, chunksize: int, prefix: str) -> Trial:
    from mpupload.run.coordinator import Coordinator

    s = replace(settings, processes=processes, threads=threads, multipart_chunksize=chunksize, prefix=prefix,
                json_output=True).validated()
    psutil.cpu_percent(None)
    cpu0, net0, t0 = _cpu_self_and_children(), _net_sent(), time.perf_counter()
    # A sink that draws nothing (tune prints its own table; notices would repeat every trial).
    outcome = Coordinator(s, Sink()).run()
    if outcome.interrupted:  # the trial stopped for a signal: so does the sweep (its cleanup still runs)
        raise Interrupted(outcome.signum or signal.SIGINT)
    seconds = time.perf_counter() - t0
    snap = outcome.snapshot
    return Trial(processes=processes, threads=threads, chunksize=chunksize, seconds=seconds,
                 files=snap.uploaded, nbytes=snap.bytes_uploaded, failed=snap.failed + snap.pending,
                 client_cpu_s=_cpu_self_and_children() - cpu0, machine_cpu=psutil.cpu_percent(None) / 100,
                 net_mb_per_s=(_net_sent() - net0) / 1e6 / seconds if seconds else 0.0,
                 peak_rss=snap.resources.get("peak_rss", 0))


def _score(t: Trial) -> float:
    return t.mb_per_s if t.files < 20 else t.files_per_s


def _key(t: Trial) -> tuple[int, int, int]:
    return t.processes, t.threads, t.chunksize


def recommend(trials: list[Trial], *, cpus: int, loopback: bool, latency: float | None = None) -> Recommendation:
    """The fastest setting by its mean over its trials (ties, within 5%, go to fewer processes and
    threads: less memory), and why it cannot go faster. A setting with a failed trial is out."""
    failed = {_key(t) for t in trials if t.failed or not t.files}
    groups: dict[tuple[int, int, int], list[Trial]] = {}
    for t in trials:
        if _key(t) not in failed:
            groups.setdefault(_key(t), []).append(t)
    if not groups:
        raise RuntimeError("no trial uploaded the whole sample; check the failures with a normal upload")
    score = {k: sum(_score(t) for t in ts) / len(ts) for k, ts in groups.items()}
    top = max(score.values())
    pick = min((k for k in groups if score[k] >= 0.95 * top), key=lambda k: (k[0] * k[1], k[2]))
    best = groups[pick][-1]
    client_share = best.client_cpu_s / best.seconds / cpus if best.seconds else 0.0
    # Little's law: with N requests in flight each taking the round trip, at most N / latency finish per
    # second. A rate near that ceiling means the requests spent their time on the link.
    ceiling = best.processes * best.threads / latency if latency else 0.0
    if ceiling and best.files >= 20 and best.files_per_s >= 0.6 * ceiling and best.machine_cpu < BUSY_CPU:
        bound = "link-latency-bound"
        why = (f"{best.files_per_s:.0f} files/s with {best.processes * best.threads} requests in flight at a "
               f"{latency * 1000:.0f} ms round trip is {best.files_per_s / ceiling:.0%} of what that many can do "
               "(Little's law); more requests in flight would go faster")
    elif best.machine_cpu >= BUSY_CPU and client_share >= 0.5 * best.machine_cpu:
        bound = "client-CPU-bound"
        why = (f"the machine's CPUs were {best.machine_cpu:.0%} busy, mostly with this upload ({client_share:.0%}): "
               "more processes or threads only add overhead")
    elif best.machine_cpu >= BUSY_CPU:
        bound = "machine-CPU-bound"
        why = (f"the CPUs were {best.machine_cpu:.0%} busy but this upload used only {client_share:.0%}: other "
               "processes (here likely the S3 server itself) hold the rest")
    elif best.files < 20 and not loopback:
        bound = "bandwidth-bound"
        why = (f"large files at {best.mb_per_s:.0f} MB/s with the CPUs {best.machine_cpu:.0%} busy: the link's "
               "bandwidth (or the server's disk) sets the pace")
    else:
        bound = "server-bound" if loopback else "network- or server-bound"
        why = (f"the CPUs were only {best.machine_cpu:.0%} busy and more concurrency did not go faster: the "
               f"{'server' if loopback else 'network or the server'} sets the pace "
               f"({best.net_mb_per_s:.0f} MB/s sent)")
    return Recommendation(best.processes, best.threads, best.chunksize, bound, why, tuple(trials))


def delete_prefix(client, bucket: str, prefix: str) -> int:
    """Delete every object (and unfinished multipart upload) under prefix/. Returns objects deleted."""
    from mpupload.s3.listing import iter_listing
    from mpupload.s3.multipart import iter_uploads

    deleted, keys = 0, []
    for key, _size in iter_listing(client, bucket=bucket, prefix=prefix):
        keys.append({"Key": key})
        if len(keys) == 1000:  # DeleteObjects takes at most 1,000 keys
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted, keys = deleted + len(keys), []
    if keys:
        client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        deleted += len(keys)
    for key, upload_id in iter_uploads(client, bucket=bucket, prefix=prefix + "/"):
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    return deleted


def tune(settings: Settings, *, budget: float, echo: Callable[[str], None] = print,
         latency: float | None = None) -> Recommendation:
    """Sweep settings on a sample within `budget` seconds (the first trial always runs), clean up, recommend."""
    from mpupload.s3.client import make_client

    deadline = time.monotonic() + budget
    cpus = os.cpu_count() or 2
    scratch = f"{settings.prefix}/.mpupload-tune-{secrets.token_hex(4)}".lstrip("/")
    sample_dir = Path(tempfile.mkdtemp(prefix="mpupload-tune-"))
    trials: list[Trial] = []
    try:
        mix = make_sample(settings, sample_dir)
        if not mix.files:
            raise RuntimeError(f"no files to sample under {settings.source}")
        echo(f"sample: {mix.small_files} small + {mix.large_files} large files, "
             f"{(mix.small_bytes + mix.large_bytes) / 1e6:.0f} MB; scratch prefix {scratch}/; budget {budget:.0f}s")
        base = replace(settings, source=str(sample_dir), follow_symlinks=True, include=(), exclude=())
        if latency is not None:
            echo(f"link: {latency * 1000:.0f} ms per request (round trip + server); Little's law asks for "
                 f"~{thread_counts(latency)[0]} requests in flight per process: sweeping {thread_counts(latency)}")
        plan = list(candidates(cpus=cpus, mix=mix, base_chunk=settings.multipart_chunksize, latency=latency))
        # The first trial runs twice: its first run pays the server's and the page cache's warm-up and is
        # not scored. After the sweep, the two best settings run again while the budget lasts, since one
        # run on a shared machine is a noisy judge.
        sweep = [plan[0], *plan]
        warm: Trial | None = None
        i = 0
        while i < len(sweep) and (not trials or time.monotonic() + trials[-1].seconds * 1.2 <= deadline):
            p, t, c = sweep[i]
            trial = run_trial(base, processes=p, threads=t, chunksize=c, prefix=f"{scratch}/{i}")
            warm_up = i == 0
            echo(f"  {trial.label():24} {trial.seconds:6.2f}s {trial.files_per_s:7.1f} files/s "
                 f"{trial.mb_per_s:7.1f} MB/s  client CPU {trial.client_cpu_s:5.2f}s  machine CPU "
                 f"{trial.machine_cpu:4.0%}" + (f"  FAILED {trial.failed}" if trial.failed else "")
                 + ("  (warm-up, not scored)" if warm_up else ""))
            if warm_up:
                warm = trial  # scored only when nothing else fits in the budget
            else:
                trials.append(trial)
            i += 1
            if i == len(sweep) and len(trials) >= 2:
                ranked = sorted(trials, key=_score, reverse=True)
                sweep += [_key(ranked[0]), _key(ranked[1])] if len(sweep) == len(plan) + 1 else []
        if not trials and warm is not None:
            trials.append(warm)
        endpoint = make_client(settings).meta.endpoint_url or ""
        loopback = any(h in endpoint for h in ("//127.", "//localhost", "//[::1]"))
        return recommend(trials, cpus=cpus, loopback=loopback, latency=latency)
    finally:
        shutil.rmtree(sample_dir, ignore_errors=True)
        n = delete_prefix(make_client(settings), settings.bucket, scratch)
        echo(f"deleted {n} scratch objects under {scratch}/")
