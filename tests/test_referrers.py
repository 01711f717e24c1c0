"""Referrers travel with their image: signatures, SBOMs and attestations, byte for byte.

The CNCF registry (distribution 2.8) has no referrers API: the fallback tag is the real path
there. Referrers are made by the test with plain HTTP, exactly as cosign and oras lay them out
(:mod:`tests.referrers`); a signature of the SBOM makes a tree two deep.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from registryv2 import RegistryClient, copy, referrers

from .archives import simple_image, write_docker25
from .referrers import (
    IN_TOTO,
    OCI_INDEX,
    SIMPLE_SIGNING,
    SPDX,
    add_to_fallback_index,
    cosign_signature,
    descriptor_of,
    fallback_tag,
    get_manifest,
    oci_referrer,
    sha256,
    walk_digests,
)
from .servers import RegistryServer

pytestmark = pytest.mark.integration


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registryv2", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(*args: str) -> str:
    done = run(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


class Signed:
    """An image in a registry with a cosign signature, an SBOM (itself signed) and an
    attestation: every manifest's bytes, by digest."""

    def __init__(self, registry: RegistryServer, repo: str, tmp_path: Path, seed: str) -> None:
        image = simple_image(tag=f"app:{seed}", seed=seed)
        tar = write_docker25(tmp_path / f"{seed}.tar", [image])
        url = registry.url
        with RegistryClient(url) as client:
            self.digest = client.push(tar, repo, "v1").digest
        self.subject = descriptor_of(url, repo, "v1")
        self.signature = cosign_signature(url, repo, self.digest, f"{registry.host}/{repo}")
        self.sbom = oci_referrer(url, repo, self.subject, SPDX, b'{"spdxVersion": "SPDX-2.3"}')
        self.attestation = oci_referrer(url, repo, self.subject, IN_TOTO, b'{"_type": "x"}')
        self.sbom_signature = cosign_signature(
            url, repo, sha256(self.sbom), f"{registry.host}/{repo}"
        )
        self.fallback = get_manifest(url, repo, fallback_tag(self.digest))

    @property
    def manifests(self) -> dict[str, bytes]:
        return {
            sha256(raw): raw
            for raw in (self.signature, self.sbom, self.attestation, self.sbom_signature)
        }


def assert_carried(signed: Signed, url: str, repo: str) -> None:
    """Every referrer is in ``repo`` at ``url``, byte for byte; the fallback index lists the
    OCI ones; cosign's tags point at the signatures."""
    for digest, raw in signed.manifests.items():
        assert get_manifest(url, repo, digest) == raw, digest
    index = json.loads(get_manifest(url, repo, fallback_tag(signed.digest)) or b"{}")
    listed = {m["digest"]: m for m in index["manifests"]}
    assert set(listed) >= {sha256(signed.sbom), sha256(signed.attestation)}
    assert listed[sha256(signed.sbom)]["artifactType"] == SPDX
    assert get_manifest(url, repo, fallback_tag(signed.digest) + ".sig") == signed.signature
    assert (
        get_manifest(url, repo, fallback_tag(sha256(signed.sbom)) + ".sig") == signed.sbom_signature
    )


def test_referrers_lists_the_tree_from_the_fallback_tag_and_cosign_tags(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    signed = Signed(registry, repo, tmp_path, "tree")
    reference = f"{registry.host}/{repo}:v1"
    tree = referrers(reference)
    by_digest = {r.digest: r for top in tree for r in top.walk()}
    assert set(by_digest) == set(signed.manifests)
    assert by_digest[sha256(signed.sbom)].found == "fallback"
    assert by_digest[sha256(signed.signature)].tag == fallback_tag(signed.digest) + ".sig"
    assert by_digest[sha256(signed.signature)].artifact_type == SIMPLE_SIGNING
    sbom = next(r for r in tree if r.digest == sha256(signed.sbom))
    assert [r.digest for r in sbom.referrers] == [sha256(signed.sbom_signature)]
    assert [r.digest for r in referrers(reference, SPDX)] == [sha256(signed.sbom)]

    doc = json.loads(ok("referrers", "--json", reference))
    assert doc["digest"] == signed.digest
    assert set(walk_digests(doc["referrers"])) == set(signed.manifests)
    text = ok("referrers", reference)
    assert text.splitlines()[0] == f"{registry.host}/{repo}:v1@{signed.digest}"
    assert f"    └── {sha256(signed.sbom_signature)}" in text or "│   └──" in text
    # An artifact is inspected as one: its type, subject and files, no platform or date.
    shown = ok("inspect", f"{registry.host}/{repo}@{sha256(signed.sbom)}")
    assert f"Artifact type: {SPDX}" in shown and f"Subject:       {signed.digest}" in shown
    assert "content.json" in shown and "Platform" not in shown and "0001-01-01" not in shown


def test_copy_with_referrers_carries_them_into_a_second_registry(
    registry: RegistryServer, other: RegistryServer, repo: str, tmp_path: Path
) -> None:
    signed = Signed(registry, repo, tmp_path, "copy")
    # The target already lists someone else's referrer of the same image: it must stay.
    target_repo = repo + "/mirror"
    with RegistryClient(other.url) as client:
        client.push(tmp_path / "copy.tar", target_repo, "v1")
    theirs = oci_referrer(other.url, target_repo, signed.subject, "text/plain", b"their note")
    ok("copy", "--referrers", f"{registry.host}/{repo}:v1", f"{other.host}/{target_repo}:v1")
    assert_carried(signed, other.url, target_repo)
    index = json.loads(get_manifest(other.url, target_repo, fallback_tag(signed.digest)) or b"{}")
    digests = [m["digest"] for m in index["manifests"]]
    assert sha256(theirs) in digests and len(digests) == len(set(digests)) == 3
    # Again: nothing is listed twice.
    copy(f"{registry.host}/{repo}:v1", f"{other.host}/{target_repo}:v1", referrers=True)
    again = json.loads(get_manifest(other.url, target_repo, fallback_tag(signed.digest)) or b"{}")
    assert [m["digest"] for m in again["manifests"]] == digests


@pytest.mark.parametrize("bundle", ["bundle.tar", "oci:bundle-layout"])
def test_referrers_cross_an_air_gap_in_an_archive_or_a_layout(
    bundle: str, registry: RegistryServer, other: RegistryServer, repo: str, tmp_path: Path
) -> None:
    one = Signed(registry, repo, tmp_path, "gap-one")
    two_tar = write_docker25(tmp_path / "two.tar", [simple_image(tag="two:v2", seed="gap-two")])
    with RegistryClient(registry.url) as client:
        client.push(two_tar, repo + "/two", "v2")
    two_repo = repo + "/two"
    two_subject = descriptor_of(registry.url, two_repo, "v2")
    two_sbom = oci_referrer(registry.url, two_repo, two_subject, SPDX, b'{"two": 1}')
    place = bundle if bundle.startswith("oci:") else str(tmp_path / bundle)
    if place.startswith("oci:"):
        place = f"oci:{tmp_path / 'bundle-layout'}"
    ok(
        "pull",
        "--referrers",
        f"{registry.host}/{repo}:v1",
        f"{registry.host}/{two_repo}:v2",
        "-o",
        place,
    )
    # The referrers are in the bundle, never images to load or push as images.
    listed = ok("push", "--all-tags", "--referrers", place, other.host).split()
    # Each image under its tag, then each referrer where it went (by digest, or its tag).
    assert listed[:2] == [
        f"{other.host}/{repo}:v1@{one.digest}",
        f"{other.host}/{two_repo}:v2@{two_subject['digest']}",
    ]
    assert len(listed) == 2 + len(one.manifests) + 1
    assert_carried(one, other.url, repo)
    assert get_manifest(other.url, two_repo, sha256(two_sbom)) == two_sbom
    index = json.loads(
        get_manifest(other.url, two_repo, fallback_tag(two_subject["digest"])) or b"{}"
    )
    assert [m["digest"] for m in index["manifests"]] == [sha256(two_sbom)]
    if not place.startswith("oci:"):
        manifest_json = subprocess.run(
            ["tar", "-xOf", place, "manifest.json"], capture_output=True, check=True
        ).stdout
        assert len(json.loads(manifest_json)) == 2  # the two images; no referrer to load
    with RegistryClient(other.url) as client:
        assert sorted(client.list_tags(repo)) == sorted(
            ["v1", fallback_tag(one.digest), fallback_tag(one.digest) + ".sig",
             fallback_tag(sha256(one.sbom)) + ".sig"]
        )  # fmt: skip


def test_without_referrers_a_copy_leaves_them_behind(
    registry: RegistryServer, other: RegistryServer, repo: str, tmp_path: Path
) -> None:
    signed = Signed(registry, repo, tmp_path, "plain")
    copy(f"{registry.host}/{repo}:v1", f"{other.host}/{repo}:v1")
    for digest in signed.manifests:
        assert get_manifest(other.url, repo, digest) is None


def test_rm_with_referrers_leaves_nothing_and_plain_rm_leaves_them(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    signed = Signed(registry, repo, tmp_path, "rm")
    # Deleting an artifact takes it out of its image's fallback index.
    ok("rm", "-y", f"{registry.host}/{repo}@{sha256(signed.attestation)}")
    index = json.loads(get_manifest(registry.url, repo, fallback_tag(signed.digest)) or b"{}")
    assert [m["digest"] for m in index["manifests"]] == [sha256(signed.sbom)]
    # A plain rm of the image leaves its referrers.
    with RegistryClient(registry.url) as client:
        client.push(tmp_path / "rm.tar", repo, "again")
    other_tag = f"{registry.host}/{repo}:again"
    ok("rm", "-y", "--referrers", other_tag)
    for raw in (signed.signature, signed.sbom, signed.sbom_signature):
        assert get_manifest(registry.url, repo, sha256(raw)) is None
    assert get_manifest(registry.url, repo, fallback_tag(signed.digest)) is None
    with RegistryClient(registry.url) as client:
        assert client.list_tags(repo) in ([], None) or not [
            t for t in client.list_tags(repo) if t.startswith("sha256-")
        ]


def test_plain_rm_of_an_image_leaves_its_referrers(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    signed = Signed(registry, repo, tmp_path, "keep")
    ok("rm", "-y", f"{registry.host}/{repo}:v1")
    for digest, raw in signed.manifests.items():
        assert get_manifest(registry.url, repo, digest) == raw


def test_a_fallback_tag_that_is_not_an_index_is_refused_and_left(
    registry: RegistryServer, other: RegistryServer, repo: str, tmp_path: Path
) -> None:
    signed = Signed(registry, repo, tmp_path, "not-index")
    with RegistryClient(other.url) as client:
        client.push(tmp_path / "not-index.tar", repo, "v1")
        # Someone put an image where the fallback index goes.
        client.push(tmp_path / "not-index.tar", repo, fallback_tag(signed.digest))
        before = client.get_manifest(repo, fallback_tag(signed.digest)).digest
    done = run("copy", "--referrers", f"{registry.host}/{repo}:v1", f"{other.host}/{repo}:v1")
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1 and "not an image index of referrers" in done.stderr
    with RegistryClient(other.url) as client:
        assert client.get_manifest(repo, fallback_tag(signed.digest)).digest == before


def test_a_referrer_whose_subject_is_another_is_refused(
    registry: RegistryServer, other: RegistryServer, repo: str, tmp_path: Path
) -> None:
    signed = Signed(registry, repo, tmp_path, "liar")
    with RegistryClient(registry.url) as client:
        client.push(tmp_path / "liar.tar", repo + "/b", "v1")
    # The image's fallback index lists an SBOM of another image.
    stranger = oci_referrer(
        registry.url, repo, descriptor_of(registry.url, repo, fallback_tag(signed.digest) + ".sig"),
        SPDX, b"{}", fallback=False,
    )  # fmt: skip
    add_to_fallback_index(registry.url, repo, signed.digest, stranger)
    done = run("copy", "--referrers", f"{registry.host}/{repo}:v1", f"{other.host}/{repo}:v1")
    assert done.returncode == 2, done.stderr
    assert "is listed as a referrer of" in done.stderr and len(done.stderr.splitlines()) == 1
    assert get_manifest(other.url, repo, "v1") is None  # nothing half-copied


def test_a_cycle_of_cosign_tags_is_copied_once(
    registry: RegistryServer, other: RegistryServer, repo: str, tmp_path: Path
) -> None:
    signed = Signed(registry, repo, tmp_path, "cycle")
    # The signature's own .sig tag points back at the image: a loop, walked once.
    raw = get_manifest(registry.url, repo, "v1")
    assert raw is not None
    from .referrers import put_manifest

    media_type = json.loads(raw)["mediaType"]
    put_manifest(
        registry.url, repo, fallback_tag(sha256(signed.signature)) + ".sig", raw, media_type
    )
    ok("copy", "--referrers", f"{registry.host}/{repo}:v1", f"{other.host}/{repo}:v1")
    assert_carried(signed, other.url, repo)


def _as_index(raw: bytes | None) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(raw or b"{}")
    assert doc.get("mediaType") == OCI_INDEX
    return doc
