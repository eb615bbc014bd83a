import { defineConfig } from "vitest/config";

// Two projects: fast unit tests of the program's shape and pure logic, and integration tests that run the real
// parts (libguestfs, qemu-img, an S3 server, gpg) and take minutes under TCG.
export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["test/unit/**/*.test.ts"], testTimeout: 30_000 } },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          testTimeout: 30 * 60_000,
          hookTimeout: 30 * 60_000,
          // Appliances and VMs share 2 cores: one file at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
