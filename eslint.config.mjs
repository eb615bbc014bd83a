// Lint. Production code gets typescript-eslint's type-checked recommended rules (no-floating-promises and
// no-misused-promises catch a forgotten await in the CLI the Commands run and in the emulator's handlers); tests
// get the syntactic set: type-checking them too adds a fifth to a run (about 45 s of CPU here) for rules that
// mostly flag the mocks' deliberately untyped wire data.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

const TESTS = ["test/**/*.ts"];

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", ".factory/", "**/*.d.ts"] },
  js.configs.recommended,
  {
    files: ["**/*.ts"],
    ignores: TESTS,
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
  },
  { files: TESTS, extends: [tseslint.configs.recommended] },
  { files: ["**/*.mjs", "**/*.mts"], extends: [tseslint.configs.recommended] },
  {
    rules: {
      // `_`-named bindings are the house's way to drop a field or an argument on purpose.
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none", ignoreRestSiblings: true },
      ],
      // Its String(x) findings print unknown wire values (API errors, config) on purpose: an object there reads
      // "[object Object]" in a message, which is a bug the message's test shows, not a crash.
      "@typescript-eslint/no-base-to-string": "off",
    },
  },
  {
    files: TESTS,
    rules: {
      // Mocks and recorded traffic are untyped wire data; tests say `any` where they read it.
      "@typescript-eslint/no-explicit-any": "off",
      // Tests match the CLI's aligned tables, where literal runs of spaces read as what they match.
      "no-regex-spaces": "off",
    },
  },
  {
    // The emulator's route handlers share one async signature whether or not they wait, so that a throw inside any
    // of them becomes the same rejected promise the router turns into an API error.
    files: ["builder/emulator/*.ts"],
    rules: { "@typescript-eslint/require-await": "off" },
  },
);
