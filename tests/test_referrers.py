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
    OCI_MANIFEST,
    SIMPLE_SIGNING,
    SPDX,
    ReferrersFront,
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


def test_the_referrers_api_is_read_page_by_page_and_filtered(
    registry: RegistryServer, other: RegistryServer, repo: str, tmp_path: Path
) -> None:
    signed = Signed(registry, repo, tmp_path, "api")
    with ReferrersFront(other.host, page_size=1) as front:
        # Into a registry with the API: every referrer put by digest, which the registry
        # takes by its subject (OCI-Subject): no fallback tag is written.
        ok("copy", "--referrers", f"{registry.host}/{repo}:v1", f"{front.host}/{repo}:v1")
        assert get_manifest(other.url, repo, fallback_tag(signed.digest)) is None
        recorded = {e["digest"] for e in front.recorded[(repo, signed.digest)]}
        assert recorded == {sha256(signed.sbom), sha256(signed.attestation)}
        # Read back through the API: two pages, then each filter, by the registry or not.
        tree = referrers(f"{front.host}/{repo}:v1")
        assert {r.digest for top in tree for r in top.walk()} == set(signed.manifests)
        assert {r.found for r in tree} == {"api", "tag"}
        pages = [p for p in front.referrer_requests if signed.digest in p]
        assert len(pages) >= 2 and any("page=1" in p for p in pages)
        for filtered in (True, False):
            front.filters = filtered
            found = referrers(f"{front.host}/{repo}:v1", SPDX)
            assert [r.digest for r in found] == [sha256(signed.sbom)]


@pytest.mark.parametrize("answer", [404, 400, 406, "not-an-index"])
def test_each_answer_that_means_no_api_reads_the_fallback_tag(
    answer: int | str, registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    signed = Signed(registry, repo, tmp_path, f"no-api-{answer}")
    with ReferrersFront(registry.host) as front:
        front.no_api = answer
        found = referrers(f"{front.host}/{repo}:v1")
        assert front.referrer_requests  # the API was asked first
    assert {r.digest for top in found for r in top.walk()} == set(signed.manifests)
    assert {r.found for r in found} == {"fallback", "tag"}


def test_thousands_of_referrers_are_paged_and_a_looping_registry_is_an_error(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    signed = Signed(registry, repo, tmp_path, "many")
    extra = [
        {
            "mediaType": OCI_MANIFEST,
            "digest": sha256(str(n).encode()),
            "size": 2,
            "artifactType": "x/y",
        }
        for n in range(3000)
    ]
    with ReferrersFront(registry.host, page_size=500) as front:
        front.extra, front.extra_subject = extra, signed.digest
        found = referrers(f"{front.host}/{repo}:v1", "x/y", depth=1)
        assert len(found) == 3000 and len(front.referrer_requests) == 6  # pages of 500
        front.loop_pages = True
        done = run("referrers", f"{front.host}/{repo}:v1")
        assert done.returncode == 1 and "next page link loops" in done.stderr
        assert len(done.stderr.splitlines()) == 1


def test_attach_then_referrers_round_trip_and_oras_pulls_the_files(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    import oras.client

    image = write_docker25(tmp_path / "app.tar", [simple_image(tag="app:v1", seed="attach")])
    with RegistryClient(registry.url) as client:
        subject = client.push(image, repo, "v1").digest
    sbom = tmp_path / "sbom.spdx.json"
    sbom.write_text('{"spdxVersion": "SPDX-2.3", "name": "app"}')
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"scanned: clean\n")
    out = ok(
        "attach", f"{registry.host}/{repo}:v1", "--artifact-type", SPDX,
        f"{sbom}:{SPDX}", str(notes), "-a", "org.example.scanner=v2",
    )  # fmt: skip
    written = out.strip()
    assert written.startswith(f"{registry.host}/{repo}@sha256:")
    digest = written.rsplit("@", 1)[1]
    doc = json.loads(ok("referrers", "--json", f"{registry.host}/{repo}:v1"))
    assert doc["digest"] == subject
    [node] = doc["referrers"]
    assert (node["digest"], node["artifact_type"], node["found"]) == (digest, SPDX, "fallback")
    assert node["annotations"] == {"org.example.scanner": "v2"}
    manifest = json.loads(get_manifest(registry.url, repo, digest) or b"{}")
    assert manifest["subject"]["digest"] == subject
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        SPDX,
        "application/octet-stream",
    ]
    # oras, another client, pulls the artifact's files back by digest, named by their titles.
    pulled = tmp_path / "pulled"
    files = oras.client.OrasClient(insecure=True).pull(
        target=f"{registry.host}/{repo}@{digest}", outdir=str(pulled)
    )
    assert sorted(Path(f).name for f in files) == ["notes.txt", "sbom.spdx.json"]
    assert (pulled / "sbom.spdx.json").read_bytes() == sbom.read_bytes()
    assert (pulled / "notes.txt").read_bytes() == notes.read_bytes()


def test_attach_refuses_a_missing_file_and_a_missing_image(
    registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    done = run(
        "attach", f"{registry.host}/{repo}:v1", "--artifact-type", SPDX, str(tmp_path / "none")
    )
    assert done.returncode == 2 and "cannot read" in done.stderr, done.stderr
    (tmp_path / "f").write_text("x")
    done = run(
        "attach", f"{registry.host}/{repo}:nope", "--artifact-type", SPDX, str(tmp_path / "f")
    )
    assert done.returncode == 1 and "no such image" in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1
