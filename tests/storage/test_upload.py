"""`storage upload` compares content, never just sizes, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_platform.storage import get_zone
from data_platform.storage.transfer import same_content, upload_tree

pytestmark = pytest.mark.usefixtures("storage_backend")


def test_an_object_is_skipped_only_when_its_content_is_the_same(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.csv").write_text("1,one\n")
    assert upload_tree(src, "incoming", prefix="t").uploaded == 1
    assert upload_tree(src, "incoming", prefix="t") == upload_tree(src, "incoming", prefix="t")
    assert upload_tree(src, "incoming", prefix="t").skipped == 1
    # Same size, other bytes: uploaded.
    (src / "a.csv").write_text("2,two\n")
    assert upload_tree(src, "incoming", prefix="t").uploaded == 1
    incoming = get_zone("incoming")
    with incoming.open("t/a.csv") as body:
        assert body.read() == b"2,two\n"
    info = incoming.head("t/a.csv")
    assert info is not None and same_content(src / "a.csv", incoming, info)
    (src / "a.csv").write_text("3,six\n")
    assert not same_content(src / "a.csv", incoming, info)


def test_a_check_sees_the_keys_before_anything_lands(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("a")
    (src / "b").write_text("b")

    def refuse(keys: list[str]) -> None:
        raise RuntimeError(f"refused {keys}")

    with pytest.raises(RuntimeError, match=r"refused \['p/a', 'p/b'\]"):
        upload_tree(src, "incoming", prefix="p", check=refuse)
    assert list(get_zone("incoming").list("p/")) == []
