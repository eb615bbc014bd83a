/**
 * Imported first by the CLI: Node keeps the bytecode it compiles for every module loaded afterwards (the CLI's and
 * the SDKs') in the per-user cache, checked against each module's source, so each run of the CLI (one per image and
 * Command) compiles nothing it compiled before: about a third of its start-up. Best effort, as Node makes it: no
 * cache is no error, and NODE_COMPILE_CACHE or NODE_DISABLE_COMPILE_CACHE still decide where, or whether.
 */
import nodeModule from "node:module";
import { cacheDir } from "../system/paths";

// Absent before Node 22.8, which the CLI still runs on (MIN_NODE_MAJOR).
(nodeModule as Partial<typeof nodeModule>).enableCompileCache?.(cacheDir("node-compile-cache"));
