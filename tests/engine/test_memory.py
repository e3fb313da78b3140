"""stemwright.engine.memory: freed memory retained only while separations run, shared by nested and concurrent
ones, and left alone where glibc is not the allocator or the user tunes malloc."""
from __future__ import annotations

import threading

import pytest

from stemwright.engine import memory
from stemwright.engine.memory import retain_freed_memory, retaining


class FakeLibc:
    """Records mallopt/malloc_trim calls instead of changing this process's allocator."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


def test_nested_and_concurrent_separations_share_one_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    libc = FakeLibc()
    monkeypatch.setattr(memory, "_LIBC", libc)
    inside = threading.Event()
    release = threading.Event()

    def other_separation() -> None:
        with retain_freed_memory():
            inside.set()
            release.wait(5)

    assert not retaining()
    with retain_freed_memory():
        with retain_freed_memory():
            worker = threading.Thread(target=other_separation)
            worker.start()
            assert inside.wait(5)
        assert retaining()
        release.set()
        worker.join(5)
        assert retaining()
        assert libc.calls == [("mallopt", memory.M_MMAP_MAX, 0), ("mallopt", memory.M_TRIM_THRESHOLD,
                                                                  memory.RETAIN_TRIM_THRESHOLD)]
    assert not retaining()
    assert libc.calls[2:] == [("mallopt", memory.M_MMAP_MAX, memory.DEFAULT_MMAP_MAX),
                              ("mallopt", memory.M_MMAP_THRESHOLD, memory.RESTORED_MMAP_THRESHOLD),
                              ("mallopt", memory.M_TRIM_THRESHOLD, memory.RESTORED_TRIM_THRESHOLD),
                              ("malloc_trim", 0)]


def test_restored_after_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    libc = FakeLibc()
    monkeypatch.setattr(memory, "_LIBC", libc)
    with pytest.raises(RuntimeError):
        with retain_freed_memory():
            raise RuntimeError("model failed")
    assert not retaining() and libc.calls[-1] == ("malloc_trim", 0)


def test_no_op_without_glibc_or_when_the_user_tunes_malloc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_LIBC", None)
    with retain_freed_memory():
        assert not retaining()
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_max=0")
    assert memory._libc() is None
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert memory._libc() is None


def test_real_glibc_round_trip() -> None:
    """On this machine's real allocator (glibc on the CI machines): the calls are accepted and nothing breaks."""
    if memory._libc() is None:
        pytest.skip("not glibc")
    with retain_freed_memory():
        blocks = [bytearray(40 * 2**20) for _ in range(3)]  # above the 32 MB mmap threshold
        del blocks
        assert retaining()
    assert not retaining()


def test_separate_tensor_retains_for_the_whole_track_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine holds the setting while the model runs, all shifted passes under one setting, and lets go after."""
    import torch

    from stemwright.engine.run import separate_tensor
    from tests.engine.identity import Identity

    libc = FakeLibc()
    monkeypatch.setattr(memory, "_LIBC", libc)
    seen: list[bool] = []

    class Recording(Identity):
        def forward(self, mix: torch.Tensor) -> torch.Tensor:
            seen.append(retaining())
            return super().forward(mix)

    separate_tensor(Recording(segment=1.0), torch.randn(2, 350), shifts=2)
    assert seen and all(seen) and not retaining()
    assert [c for c in libc.calls if c[0] == "malloc_trim"] == [("malloc_trim", 0)]
