/** Annotations of a tool that only reads: it changes nothing, the same call gives the same answer, and it reaches nothing outside this host. */
export function readOnlyAnnotations(title: string) {
  return {
    title,
    readOnlyHint: true,
    destructiveHint: false,
    idempotentHint: true,
    openWorldHint: false,
  } as const;
}
