import { join } from "node:path";
import { stackNames } from "../../builder/stack-files";

/** The project's stack names, from stacks/. */
export const STACKS = stackNames(join(__dirname, "..", ".."));
