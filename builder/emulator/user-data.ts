/** User data of a server: keys listed, values read and written as text, as the metadata API serves them. */
import type { State } from "./context";
import { notFound } from "./errors";
import type { Router } from "./router";

export function registerUserData(ctx: State, r: Router): void {
  const { servers, get } = ctx;
  const { route, I } = r;
  route("GET", `${I}/servers/{id}/user_data`, (m) => [
    200,
    { user_data: [...get(servers, m[0]!, "instance_server").userData.keys()] },
  ]);
  route("GET", `${I}/servers/{id}/user_data/{key}`, (m) => {
    const v = get(servers, m[0]!, "instance_server").userData.get(m[1]!);
    if (v === undefined) throw notFound("instance_user_data", m[1]!);
    return [200, Buffer.from(v)];
  });
  route("PATCH", `${I}/servers/{id}/user_data/{key}`, (m, b) => {
    get(servers, m[0]!, "instance_server").userData.set(m[1]!, String(b.__raw ?? ""));
    return [204, undefined];
  });
  route("DELETE", `${I}/servers/{id}/user_data/{key}`, (m) => {
    get(servers, m[0]!, "instance_server").userData.delete(m[1]!);
    return [204, undefined];
  });
}
