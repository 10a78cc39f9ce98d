from mpupload.core.messages import FAILED, SKIPPED, UPLOADED, UploadResult
from mpupload.observe.stats import Stats


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def r(status, size=10, reason="", rel="x"):
    return UploadResult(rel=rel, key="k", status=status, size=size, reason=reason)


def test_counts_bytes_rates_and_eta():
    clock = Clock()
    st = Stats(clock=clock)
    st.found(10, 1000)
    st.scan_done = True
    clock.t = 110.0
    for _ in range(5):
        st.add(r(UPLOADED, 100))
    st.sent(500)
    s = st.snapshot()
    assert (s.uploaded, s.skipped, s.failed, s.bytes_uploaded, s.pending) == (5, 0, 0, 500, 5)
    assert abs(s.bytes_per_s - 50.0) < 1e-6
    assert abs(s.files_per_min - 30.0) < 1e-6
    assert abs(s.eta_seconds - 10.0) < 1e-6  # 500 bytes left at 50 B/s; 5 files at 0.5/s


def test_no_eta_while_scanning():
    st = Stats(clock=Clock())
    st.found(10, 100)
    assert st.snapshot().eta_seconds is None


def test_failures_grouped_with_bounded_examples_and_list():
    st = Stats(keep_failures=4)
    for i in range(10):
        st.add(r(FAILED, reason=f"SlowDown: try {i}", rel=f"f{i}"))
    st.add(r(FAILED, reason="file vanished before it could be uploaded", rel="gone"))
    st.add(r(SKIPPED, reason="symbolic link (use --follow-symlinks)", rel="ln"))
    s = st.snapshot()
    assert s.failed == 11 and s.skipped == 1
    groups = {g: (n, ex) for g, n, ex in s.failure_reasons}
    assert groups["SlowDown"][0] == 10 and len(groups["SlowDown"][1]) == 3
    assert len(st.failures) == 4
    assert dict(s.skip_reasons) == {"symbolic link (use --follow-symlinks)": 1}
