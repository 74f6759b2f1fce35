"""Bounded memory with the real processes (issue 3, criterion 1): one evidence file streamed
through intake's HTTP API into all four services running as `nameko run` processes; the resident
memory (VmRSS from /proc) of every process is sampled throughout.

CI uses a 128 MiB file; `python -m bench vault` runs the same measurement with 1 GiB (the figure
in the README). What must hold: the upload succeeds and no process grows by 64 MiB or more.
"""
from bench.vault import memory

SIZE_MIB = 128


def test_a_large_upload_through_intake_keeps_every_process_under_64_mib_growth():
    result = memory(SIZE_MIB, "file")
    assert result["status"] == 201, result["answer"]
    assert set(result["growth_mib"]) == {"intake", "storage", "verification", "notification"}
    for service, growth in result["growth_mib"].items():
        assert growth < 64, f"{service} grew by {growth:.1f} MiB for a {SIZE_MIB} MiB upload"
