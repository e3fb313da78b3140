"""The published-model catalogue: schema of every JSON file present, listing, and loading end to end (file:// URLs)."""
from __future__ import annotations

import copy
import hashlib
import json

import pytest
import torch

from stemwright.pretrained import catalogue as cat
from stemwright.pretrained.catalogue import CatalogueError, catalogue_files, list_published, load_published, validate_entry
from stemwright.pretrained.download import ChecksumError, DownloadError
from stemwright.pretrained.loading import load_model
from stemwright.errors import ModelNotFound
from tests.models.umx_reference import reference_separator

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STEMWRIGHT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("STEMWRIGHT_OFFLINE", raising=False)
    cat._catalogue_cached.cache_clear()
    yield
    cat._catalogue_cached.cache_clear()


@pytest.mark.parametrize("path", catalogue_files(), ids=lambda p: p.name)
def test_every_catalogue_file_is_valid(path):
    entries = cat.read_catalogue_file(path)
    assert entries, f"{path.name} lists no models"
    for entry in entries:
        assert entry["family"] in cat.FAMILY_LOADERS, f"{path.name}: {entry['name']} has no family loader"


def test_names_unique_and_listing_keys():
    rows = list_published()
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names))
    assert {"umxhq", "umxl"} <= set(names)
    for row in rows:
        assert set(row) == {"name", "architecture", "sources", "samplerate", "licence", "description", "on_disk"}
        package_data = all("package" in f for f in cat.get_published(row["name"])["files"])
        assert row["on_disk"] is package_data  # empty cache; data of an installed package is always there


def test_umx_entries_and_licences():
    by_name = {r["name"]: r for r in list_published()}
    assert by_name["umxhq"]["licence"] == "MIT"
    assert by_name["umxl"]["licence"] == "CC BY-NC-SA 4.0"
    umxl = cat.get_published("umxl")
    assert umxl["config"]["hidden_size"] == 1024 and cat.get_published("umxhq")["config"]["hidden_size"] == 512
    for spec in umxl["files"]:  # the prefix is the one embedded in the published file name
        assert spec["url"].startswith("https://zenodo.org/records/5069601/files/")
        assert spec["filename"] == f"{spec['source']}-{spec['sha256_prefix']}.pth"


GOOD = {
    "name": "x", "architecture": "umx", "family": "umx", "sources": ["vocals"], "samplerate": 44100,
    "licence": "MIT", "description": "d", "files": [{"url": "https://a/b.pth", "sha256_prefix": "0123abcd"}],
}


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda e: e.pop("licence"), "licence"),
        (lambda e: e.update(architecture="nope"), "unknown architecture"),
        (lambda e: e["files"][0].pop("sha256_prefix"), "sha256"),
        (lambda e: e["files"][0].update(sha256_prefix="xyz"), "hex"),
        (lambda e: e["files"][0].update(url="ftp://a/b"), "url"),
        (lambda e: e.update(samplerate="44100"), "samplerate"),
        (lambda e: e.update(sources=[]), "sources"),
        (lambda e: e["files"][0].update(filename="../x"), "filename"),
        (lambda e: e.update(licence=" "), "licence"),
    ],
)
def test_schema_errors_name_the_field(change, match):
    entry = copy.deepcopy(GOOD)
    validate_entry(entry, "t.json")
    change(entry)
    with pytest.raises(CatalogueError, match=match):
        validate_entry(entry, "t.json")


def test_unknown_name_and_offline_errors():
    with pytest.raises(ModelNotFound, match="unknown model 'nope'"):  # a name the user typed: a usage error
        load_published("nope")
    with pytest.raises(DownloadError, match="offline"):
        load_published("umxhq", offline=True)


@pytest.fixture
def local_catalogue(tmp_path, monkeypatch):
    """A catalogue with one Open-Unmix model whose files are file:// URLs to weights built by openunmix."""
    ref = reference_separator(hidden_size=16, n_fft=2048, n_hop=512, max_bin=700, niter=1, seed=9)
    files = []
    for target, module in ref.target_models.items():
        path = tmp_path / "published" / f"{target}.pth"
        path.parent.mkdir(exist_ok=True)
        torch.save(module.state_dict(), path)
        prefix = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
        files.append({"url": path.as_uri(), "sha256_prefix": prefix, "filename": f"{target}-{prefix}.pth", "source": target})
    entry = {
        "name": "umx_local", "architecture": "umx", "family": "umx", "files": files,
        "sources": ["vocals", "drums", "bass", "other"], "samplerate": 44100, "licence": "CC BY-NC-SA 4.0",
        "description": "test", "config": {"n_fft": 2048, "hop_length": 512, "niter": 1, "wiener_win_len": 300},
    }
    doc = tmp_path / "catalogue" / "test.json"
    doc.parent.mkdir()
    doc.write_text(json.dumps({"models": [entry]}))
    monkeypatch.setattr(cat, "catalogue_files", lambda: [doc])
    return ref, entry


def test_load_published_downloads_verifies_and_matches_reference(local_catalogue, tmp_path):
    ref, entry = local_catalogue
    model = load_published("umx_local", progress=False)
    assert model.published_info["licence"] == "CC BY-NC-SA 4.0"
    assert list_published()[0]["on_disk"] is True
    mix = 0.2 * torch.randn(1, 2, 44100, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (model(mix) - ref(mix)).abs().max().item() <= 1e-4
    # cached: works offline, even with the source gone
    for spec in entry["files"]:
        (tmp_path / "published" / f"{spec['source']}.pth").unlink()
    assert load_published("umx_local", offline=True).sources == model.sources


def test_load_model_resolves_catalogue_names(local_catalogue):
    model = load_model("umx_local", progress=False)
    assert model.sources == ("vocals", "drums", "bass", "other") and not model.training


def test_tampered_cache_file_is_refused(local_catalogue, tmp_path):
    _, entry = local_catalogue
    load_published("umx_local", progress=False)
    cached = cat.cached_path(entry, entry["files"][1])
    cached.write_bytes(cached.read_bytes() + b"junk")
    with pytest.raises(ChecksumError, match="tampered"):
        load_published("umx_local", offline=True)


def test_duplicate_names_across_files_are_refused(tmp_path, monkeypatch):
    docs = []
    for i in range(2):
        doc = tmp_path / f"c{i}.json"
        doc.write_text(json.dumps({"models": [GOOD]}))
        docs.append(doc)
    monkeypatch.setattr(cat, "catalogue_files", lambda: docs)
    with pytest.raises(CatalogueError, match="already defined"):
        list_published()
