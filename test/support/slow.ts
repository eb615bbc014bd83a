/**
 * Tests that need extra real builds of their own (about 8 minutes each under TCG) run only with
 * FACTORY_SLOW_TESTS=1: CI's 90 minutes on two cores hold the pipeline's and the main job's builds, not these too.
 * Run them before merging a change to what they guard (docs/testing.md).
 */
export const SLOW_TESTS = process.env.FACTORY_SLOW_TESTS === "1";
