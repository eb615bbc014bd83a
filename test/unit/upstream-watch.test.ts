import { describe, expect, it } from "vitest";
import { loadCatalog, type OsRelease } from "../../images";
import {
  compareSerials,
  listingLinks,
  listingLocation,
  majorsLocation,
  newestSerial,
  serialShape,
} from "../../builder/core/upstream-watch";

const os = (id: string) => loadCatalog().byId.get(id) as OsRelease;

describe("where the watcher looks", () => {
  it.each([
    {
      id: "debian-12",
      listing: "https://cloud.debian.org/images/cloud/bookworm/",
      link: "20261201-0001/",
      serial: "20261201-0001",
    },
    {
      id: "ubuntu-24.04",
      listing: "https://cloud-images.ubuntu.com/releases/noble/",
      link: "release-20261210/",
      serial: "20261210",
    },
    {
      id: "almalinux-9",
      listing: "https://repo.almalinux.org/almalinux/9/cloud/x86_64/images/",
      link: "AlmaLinux-9-GenericCloud-9.7-20261201.x86_64.qcow2",
      serial: "9.7-20261201",
    },
    {
      id: "rocky-9",
      listing: "https://dl.rockylinux.org/pub/rocky/9/images/x86_64/",
      link: "Rocky-9-GenericCloud-Base-9.7-20261201.0.x86_64.qcow2",
      serial: "9.7-20261201.0",
    },
    {
      id: "centos-stream-9",
      listing: "https://cloud.centos.org/centos/9-stream/x86_64/images/",
      link: "CentOS-Stream-GenericCloud-9-20261201.0.x86_64.qcow2",
      serial: "20261201.0",
    },
    {
      id: "archlinux-rolling",
      listing: "https://geo.mirror.pkgbuild.com/images/",
      link: "v20261201.111111/",
      serial: "20261201.111111",
    },
  ])("$id: lists $listing", ({ id, listing, link, serial }) => {
    const where = listingLocation(os(id), "x86_64");
    expect(where.listing).toBe(listing);
    expect(where.link.exec(link)?.[1]).toBe(serial);
  });

  it("looks in the architecture's own directory", () => {
    expect(listingLocation(os("almalinux-9"), "arm64").listing).toBe(
      "https://repo.almalinux.org/almalinux/9/cloud/aarch64/images/",
    );
  });

  it.each([
    { id: "almalinux-9", listing: "https://repo.almalinux.org/almalinux/", link: "10/", major: "10" },
    { id: "centos-stream-9", listing: "https://cloud.centos.org/centos/", link: "10-stream/", major: "10" },
    { id: "rocky-10", listing: "https://dl.rockylinux.org/pub/rocky/", link: "11/", major: "11" },
  ])("$id: new majors appear in $listing", ({ id, listing, link, major }) => {
    const where = majorsLocation(os(id))!;
    expect(where.listing).toBe(listing);
    expect(where.link.exec(link)?.[1]).toBe(major);
  });

  it("cannot order codenames, so does not look for Debian or Ubuntu majors", () => {
    expect(majorsLocation(os("debian-12"))).toBeUndefined();
    expect(majorsLocation(os("ubuntu-24.04"))).toBeUndefined();
  });
});

describe("reading a listing", () => {
  const nginx = `<html><body><h1>Index of /images/cloud/bookworm/</h1><hr><pre><a href="../">../</a>
<a href="20261102-2314/">20261102-2314/</a>                                     02-Nov-2026 23:40       -
<a href="20261201-0001/">20261201-0001/</a>                                     01-Dec-2026 00:20       -
<a href="20261115-1200/">20261115-1200/</a>                                     15-Nov-2026 12:30       -
<a href="daily/">daily/</a>                                             01-Dec-2026 00:20       -
<a href="latest/">latest/</a>                                            01-Dec-2026 00:20       -
</pre><hr></body></html>`;
  const apache = `<table><tr><th><a href="?C=N;O=D">Name</a></th></tr>
<tr><td><a href="/almalinux/9/cloud/x86_64/images/">Parent Directory</a></td></tr>
<tr><td><a href="AlmaLinux-9-GenericCloud-9.10-20261201.x86_64.qcow2">AlmaLinux-9-GenericCloud-9.10-20261201.x86_64.qcow2</a></td></tr>
<tr><td><a href="AlmaLinux-9-GenericCloud-9.9-20261130.x86_64.qcow2">AlmaLinux-9-GenericCloud-9.9-20261130.x86_64.qcow2</a></td></tr>
<tr><td><a href="AlmaLinux-9-GenericCloud-latest.x86_64.qcow2">AlmaLinux-9-GenericCloud-latest.x86_64.qcow2</a></td></tr>
<tr><td><a href="CHECKSUM">CHECKSUM</a></td></tr></table>`;

  it("takes the newest dated build and ignores latest/daily and navigation", () => {
    expect(listingLinks(nginx)).toEqual(["20261102-2314/", "20261201-0001/", "20261115-1200/", "daily/", "latest/"]);
    expect(newestSerial(nginx, listingLocation(os("debian-12"), "x86_64"), "20261102-2314")).toBe("20261201-0001");
  });

  it("orders serials by their numbers, not as text", () => {
    expect(newestSerial(apache, listingLocation(os("almalinux-9"), "x86_64"), "9.7-20261030")).toBe("9.10-20261201");
    expect(compareSerials("9.10-1", "9.9-1")).toBeGreaterThan(0);
  });

  it.each([
    { pinned: "20261102-2314", yes: ["20261201-0001"], no: ["latest", "2026-12-01", "20261201"] },
    { pinned: "9.7-20261030", yes: ["10.0-20270101"], no: ["latest", "9.7"] },
    { pinned: "20261101.456789", yes: ["20261201.1"], no: ["20261201"] },
  ])("a serial shaped like $pinned", ({ pinned, yes, no }) => {
    for (const s of yes) expect(serialShape(pinned).test(s), s).toBe(true);
    for (const s of no) expect(serialShape(pinned).test(s), s).toBe(false);
  });

  it("finds nothing in a listing without builds", () => {
    expect(
      newestSerial("<html>no links</html>", listingLocation(os("debian-12"), "x86_64"), "20261102-2314"),
    ).toBeUndefined();
  });
});
