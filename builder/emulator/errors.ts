/** Error answers, with the bodies of the SDKs' error types (scaleway-sdk-go, scw/errors.go). */
import type { Refusal } from "./import-rules";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(String(body.message));
  }
}
export const notFound = (resource: string, id: string) =>
  new ApiError(404, { type: "not_found", message: "resource is not found", resource, resource_id: id });
export const invalid = (message: string, details: Record<string, unknown> = {}) =>
  new ApiError(400, { type: "invalid_arguments", message, ...details });
// The SDKs' PreconditionFailedError: `precondition` (`resource_still_in_use`…) and a `help_message`
// (scaleway-sdk-go, scw/errors.go).
export const precondition = (message: string) =>
  new ApiError(412, {
    type: "precondition_failed",
    message,
    precondition: "resource_still_in_use",
    help_message: message,
  });
// The SDKs' InvalidArgumentsError: one `details` entry per argument, with a reason and a help message (same source).
export const invalidArguments = (details: Refusal[]) =>
  new ApiError(400, { type: "invalid_arguments", message: "invalid argument(s)", details });
/** An update the emulator cannot carry out: refused, naming the field, so a test never passes on an ignored change. */
export const notEmulated = (field: string, what: string) =>
  new ApiError(501, {
    type: "not_implemented",
    message: `the emulator does not implement ${what}`,
    fields: { [field]: ["not emulated"] },
  });
