"""The toy world's default negative bank is rendered once, completely, and re-used."""

from pathlib import Path

from personalization.images import list_images, load_image
from personalization.toybank import toyworld_bank


def test_bank_is_rendered_once_and_reused(tmp_path: Path) -> None:
    bank = toyworld_bank(tmp_path, size=6, seed=1)
    images = list_images(bank)
    assert len(images) == 6
    assert load_image(images[0]).size[0] >= 32
    stamp = images[0].stat().st_mtime_ns
    assert toyworld_bank(tmp_path, size=6, seed=1) == bank
    assert images[0].stat().st_mtime_ns == stamp, "a cached bank is not rendered again"
    assert [p.name for p in tmp_path.iterdir()] == [bank.name], "no scratch folders left behind"
    other = toyworld_bank(tmp_path, size=6, seed=2)
    assert other != bank and [p.read_bytes() for p in list_images(other)] != [p.read_bytes() for p in images]
