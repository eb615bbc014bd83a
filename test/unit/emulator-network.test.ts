/** Which network the emulator's machines get: TAP where the host allows it, user networking otherwise or forced. */
import { describe, expect, it } from "vitest";
import { chooseNetwork } from "../../builder/emulator/tap-network";

const NO_TUN = "ip: ioctl(TUNSETIFF): Operation not permitted";

describe("emulator network choice", () => {
  it.each([
    { forced: undefined, why: "", kind: "tap", log: /TAP network/ },
    {
      forced: undefined,
      why: NO_TUN,
      kind: "user",
      log: /user networking \(ip: ioctl.*\); the user data port rule is off/,
    },
    { forced: "tap", why: "", kind: "tap", log: /TAP network/ },
    { forced: "user", why: "", kind: "user", log: /FACTORY_EMULATOR_NETWORK=user/ },
  ])("FACTORY_EMULATOR_NETWORK=$forced, probe '$why': $kind", ({ forced, why, kind, log }) => {
    const got = chooseNetwork(forced, () => why);
    expect(got.kind).toBe(kind);
    expect(got.log).toMatch(log);
  });

  it("does not probe when user networking is forced", () => {
    expect(chooseNetwork("user", () => expect.unreachable("probed")).kind).toBe("user");
  });

  it.each([
    { forced: "tap", why: NO_TUN, error: /FACTORY_EMULATOR_NETWORK=tap, but .*TAP device: ip: ioctl\(TUNSETIFF\)/ },
    { forced: "slirp", why: "", error: /FACTORY_EMULATOR_NETWORK is "slirp": expected tap or user/ },
  ])("refuses FACTORY_EMULATOR_NETWORK=$forced naming why", ({ forced, why, error }) =>
    expect(() => chooseNetwork(forced, () => why)).toThrow(error),
  );
});
