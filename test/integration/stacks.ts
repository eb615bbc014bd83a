import { join } from "node:path";
import { stackNames } from "../../builder/system/stack-files";

/** The project's stack names, from stacks/. */
export const STACKS = stackNames(join(__dirname, "..", ".."));
