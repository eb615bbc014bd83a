/** Instance images: each holds its block snapshots with a `link` reference until it is deleted. */
import { randomUUID } from "node:crypto";
import type { State } from "./context";
import { precondition } from "./errors";
import { undergo } from "./faults";
import { instanceDate, type Image } from "./model";
import { instanceList, str, tagsOf, type Router } from "./router";
import type { Views } from "./views";

export function registerImages(ctx: State, v: Views, r: Router): void {
  const { images, snapshots, faults, later, get } = ctx;
  const { imageJson, linkSnapshots } = v;
  const { route, I } = r;
  // Images
  route("GET", `${I}/images`, (_, __, q) =>
    instanceList(
      "images",
      [...images.values()].filter((i) => !q.get("name") || i.name.includes(q.get("name")!)).map(imageJson),
      q,
    ),
  );
  route("POST", `${I}/images`, (_, b) => {
    const snap = get(snapshots, str(b.root_volume, "root_volume"), "snapshot");
    if (snap.status !== "available") throw precondition(`snapshot ${snap.id} is ${snap.status}`);
    const extra = Object.values((b.extra_volumes as Record<string, { id: string }> | undefined) ?? {}).map(
      (e) => get(snapshots, e.id, "snapshot").id,
    );
    const image: Image = {
      id: randomUUID(),
      name: str(b.name, "name"),
      rootSnapshotId: snap.id,
      extraSnapshotIds: extra,
      arch: typeof b.arch === "string" ? b.arch : "x86_64",
      state: "available",
      tags: tagsOf(b.tags),
      fromServer: "",
      created: instanceDate(),
      modified: instanceDate(),
      public: b.public === true,
      refs: linkSnapshots([snap.id, ...extra]),
    };
    images.set(image.id, image);
    const fault = faults.transition("POST /instance/images", b);
    if (fault) {
      image.state = "creating";
      later(() =>
        undergo(fault, `the creation of image ${image.id}`).then(
          () => void (image.state = "available"),
          () => void (image.state = "error"),
        ),
      );
    }
    return [201, { image: imageJson(image) }];
  });
  route("GET", `${I}/images/{id}`, (m) => [200, { image: imageJson(get(images, m[0]!, "instance_image")) }]);
  route("PATCH", `${I}/images/{id}`, (m, b) => {
    const i = get(images, m[0]!, "instance_image");
    if (typeof b.name === "string") i.name = b.name;
    if (Array.isArray(b.tags)) i.tags = tagsOf(b.tags);
    if (typeof b.public === "boolean") i.public = b.public;
    if (b.arch === "x86_64" || b.arch === "arm64") i.arch = b.arch;
    i.modified = instanceDate();
    return [200, { image: imageJson(i) }];
  });
  route("DELETE", `${I}/images/{id}`, (m) => {
    const i = get(images, m[0]!, "instance_image");
    images.delete(i.id);
    return [204, undefined];
  });
}
