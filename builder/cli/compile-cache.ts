/**
 * Node's on-disk cache of compiled modules, in the per-user cache: every `image-factory` process (the local job
 * starts one per image) otherwise compiles the same few megabytes of JavaScript again, a few hundred milliseconds
 * each. Imported first by the CLI, so it covers the modules loaded after it. Node checks each cached entry against
 * its source, and NODE_DISABLE_COMPILE_CACHE turns it off.
 */
import * as nodeModule from "node:module";
import { cacheDir } from "../system/paths";

const enable = (nodeModule as { enableCompileCache?: (dir?: string) => unknown }).enableCompileCache;
if (enable && !process.env.NODE_COMPILE_CACHE) enable(cacheDir("node-compile-cache"));
