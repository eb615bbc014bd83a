/**
 * The package list a non-Debian build reads in the guest, as the SBOM gets it: rpm's source RPM and licence
 * columns, pacman's licences. pacman's awk program runs here for real on `pacman -Qi` output in its own format.
 */
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { SBOM_COMMAND, SBOM_PATH } from "../../builder/pipeline/customise";
import { parsePackageList, sourceRpm } from "../../builder/pipeline/finalise";
import { cycloneDx, sbomSchemaErrors, type SbomSubject } from "../../builder/pipeline/sbom";

describe("sourceRpm", () => {
  it.each([
    ["bash-5.1.8-9.el9.src.rpm", { source: "bash", sourceVersion: "5.1.8-9.el9" }],
    ["python-pip-21.3.1-1.el9.src.rpm", { source: "python-pip", sourceVersion: "21.3.1-1.el9" }],
    ["kernel-5.14.0-503.11.1.el9_5.nosrc.rpm", { source: "kernel", sourceVersion: "5.14.0-503.11.1.el9_5" }],
    ["(none)", undefined],
    ["", undefined],
    ["not-a-source", undefined],
  ])("%s", (field, expected) => expect(sourceRpm(field)).toEqual(expected));
});

describe("parsePackageList", () => {
  it.each([
    ["dpkg: three columns", "bash\t5.2.15-2+b7\tamd64", { name: "bash", version: "5.2.15-2+b7", arch: "amd64" }],
    [
      "rpm: source RPM and licence expression kept whole",
      "bash\t0:5.1.8-9.el9\tx86_64\tbash-5.1.8-9.el9.src.rpm\tGPL-3.0-or-later",
      {
        name: "bash",
        version: "0:5.1.8-9.el9",
        arch: "x86_64",
        source: "bash",
        sourceVersion: "5.1.8-9.el9",
        licenses: ["GPL-3.0-or-later"],
      },
    ],
    [
      "rpm: a gpg-pubkey has neither",
      "gpg-pubkey\t0:fd431d51-4ae0493b\t(none)\t(none)\tpubkey",
      { name: "gpg-pubkey", version: "0:fd431d51-4ae0493b", arch: "(none)", licenses: ["pubkey"] },
    ],
    [
      "pacman: no source, licences listed",
      "zstd\t1.5.6-1\tx86_64\t\tBSD-3-Clause GPL-2.0-only",
      { name: "zstd", version: "1.5.6-1", arch: "x86_64", licenses: ["BSD-3-Clause", "GPL-2.0-only"] },
    ],
    [
      "pacman: None is no licence",
      "filesystem\t2024.04.07-1\tany\t\tNone",
      { name: "filesystem", version: "2024.04.07-1", arch: "any" },
    ],
  ])("%s", (_, line, expected) => expect(parsePackageList(line)).toEqual([expected]));
});

describe("pacman's list", () => {
  it("reads name, version, architecture and licences from pacman -Qi's output", () => {
    const qi = [
      "Name            : zstd",
      "Version         : 1.5.6-1",
      "Description     : Zstandard - Fast real-time compression algorithm",
      "Architecture    : x86_64",
      "URL             : https://facebook.github.io/zstd/",
      "Licenses        : BSD-3-Clause  GPL-2.0-only",
      "Groups          : None",
      "",
      "Name            : filesystem",
      "Version         : 2024.04.07-1",
      "Architecture    : any",
      "Licenses        : GPL-2.0-only",
      "",
    ].join("\n");
    // The build's own command, with pacman's output and the list's path replaced by a sample and stdout.
    const script = SBOM_COMMAND.arch.replace("pacman -Qi", "cat").replace(`> ${SBOM_PATH}`, "");
    const out = execFileSync("bash", ["-c", script], { input: qi, encoding: "utf8" });
    expect(parsePackageList(out)).toEqual([
      { name: "filesystem", version: "2024.04.07-1", arch: "any", licenses: ["GPL-2.0-only"] },
      { name: "zstd", version: "1.5.6-1", arch: "x86_64", licenses: ["BSD-3-Clause", "GPL-2.0-only"] },
    ]);
  });
});

describe("an rpm image's SBOM", () => {
  it("carries the source package and the licence, and passes the CycloneDX 1.6 schema", async () => {
    const subject: SbomSubject = {
      release: "rocky-9",
      label: "Rocky Linux 9",
      arch: "x86_64",
      contentHash: "0123456789abcdef",
      sha256: "0".repeat(64),
      osDistro: "rocky",
      osVersion: "9",
      family: "rhel",
      timestamp: "2026-12-01T00:00:00.000Z",
      builderStamp: "test",
    };
    const packages = parsePackageList("bash\t0:5.1.8-9.el9\tx86_64\tbash-5.1.8-9.el9.src.rpm\tGPL-3.0-or-later");
    const bom = cycloneDx(subject, packages) as { components: Record<string, unknown>[] };
    expect(bom.components[0]).toMatchObject({
      name: "bash",
      purl: "pkg:rpm/rocky/bash@5.1.8-9.el9?arch=x86_64&distro=rocky-9",
      licenses: [{ license: { name: "GPL-3.0-or-later", acknowledgement: "declared" } }],
      properties: expect.arrayContaining([{ name: "image-factory:source-package", value: "bash" }]),
    });
    expect(await sbomSchemaErrors(JSON.stringify(bom))).toBeNull();
  });
});
