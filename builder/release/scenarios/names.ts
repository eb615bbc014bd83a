/** The battery's scenario names, on their own: the CLI's option tables list them without loading the battery. */
export const SCENARIOS = [
  "network",
  "dns",
  "security group",
  "private networks",
  "block volume",
  "hot snapshot",
  "cold snapshot",
  "reboot",
  "stop in place",
  "archive",
  "backup",
  "rescue",
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];
